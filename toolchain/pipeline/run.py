"""The pipeline: recipe -> trained model -> compressed -> int8 .tflite -> C -> firmware -> emulator run.

Stage directories under the run root (see stages.py for caching):
  train/     model.keras, metrics.json, recipe.json
  compress/  model.keras (the model after the recipe's [compress] stages), stages.json
  export/    model.tflite, accuracy of float and int8 on the test split, threshold sweeps
  compile/   c/ (model.c, model.h, model_plan.json, kernels/)
  build/     firmware.elf/.bin/.hex/.map, sizes.json, testset.npz (the embedded samples)
  run/       run.json (device outputs, exits, instructions), summary of the device run
and, last, summary.json, report.md, report.html and the plots in the run root.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from toolchain.boards import get_board
from toolchain.compiler.quant import quantize_array
from toolchain.errors import ToolchainError
from toolchain.fsutil import remove_stale_staging, write_json
from toolchain.pipeline import target as _target  # noqa: F401  (registers [target])
from toolchain.pipeline.stages import Pipeline, StageResult, source_hash
from toolchain.recipe import Recipe

EXIT, FINAL = "exit_1", "final"


def _section(recipe: Recipe, name: str) -> dict:
    value = recipe.sections.get(name)
    return asdict(value) if value is not None else {}


def quantize_inputs(x: np.ndarray, spec: dict) -> np.ndarray:
    """Float samples -> the model input's int8, as the host int8 evaluation quantizes them."""
    if spec["dtype"] != "int8":
        return x.astype(np.float32)
    return quantize_array(x, spec["scale"], spec["zero_point"])


def _accuracies(outputs: dict[str, np.ndarray], labels: np.ndarray, threshold: float) -> dict:
    """Accuracy of each output alone and of the exit rule (leave at exit_1 when max prob >= threshold)."""
    acc = {name: float(np.mean(np.argmax(p, axis=1) == labels)) for name, p in outputs.items()}
    if EXIT in outputs:
        leave = outputs[EXIT].max(axis=1) >= threshold
        pred = np.where(leave, outputs[EXIT].argmax(axis=1), outputs[FINAL].argmax(axis=1))
        acc["combined"] = float(np.mean(pred == labels))
        acc["exit_rate"] = float(np.mean(leave))
    return acc


class PipelineRun:
    def __init__(self, recipe: Recipe, root: Path, board: str | None = None, progress: Callable[[str], None] = print):
        self.recipe = recipe
        self.target = recipe.section("target")
        self.board = get_board(board or self.target.board)
        self.root = Path(root)
        self.progress = progress
        self.pipe = Pipeline(self.root, progress)
        self._dataset = None

    @property
    def has_exit(self) -> bool:
        return self.recipe.exit.style != "none"

    @property
    def classifier(self) -> bool:
        return self.dataset.task == "classification"

    @property
    def dataset(self):
        if self._dataset is None:
            from toolchain.train.loop import load_dataset

            self._dataset = load_dataset(self.recipe)
        return self._dataset

    # -- stages -----------------------------------------------------------------------------------
    def train(self) -> StageResult:
        from toolchain.train.loop import train

        settings = {s: _section(self.recipe, s) for s in ("model", "exit", "dataset", "train")}
        settings["code"] = source_hash("toolchain/train", "toolchain/zoo", "toolchain/data")

        def run(d: Path) -> dict:
            result = train(self.recipe, self.dataset, out_dir=d, log=lambda line: self.progress("    " + line))
            return {"test": result.test, "seconds": round(result.seconds, 1), "epochs": len(result.history)}

        return self.pipe.stage("train", settings, run)

    def compress(self, trained: StageResult) -> StageResult:
        settings = {**_section(self.recipe, "compress"), "code": source_hash("toolchain/compress")}

        def run(d: Path) -> dict:
            section = self.recipe.section("compress")
            if not section.stages:
                shutil.copy2(trained.dir / "model.keras", d / "model.keras")
                return {"stages": []}
            from toolchain.compiler.arena import arena_bytes
            from toolchain.compress.stages import compress
            from toolchain.train.loop import load_model
            from toolchain.verify.int8 import predict_tflite

            results = compress(load_model(trained.dir), self.dataset, section.stage_specs(), d / "stages",
                               batch_size=section.batch_size or self.recipe.train.batch_size,
                               seed=self.recipe.train.seed, eval_samples=section.eval_samples,
                               calibration_samples=self.target.calibration_samples,
                               exit_weight=self.recipe.exit.loss_weight if self.has_exit else None,
                               arena_estimator=arena_bytes, int8_runner=predict_tflite,
                               progress=lambda line: self.progress("    " + line))
            last = results[-1].directory
            for name in ("model.keras", "model.tflite"):
                if (last / name).is_file():
                    shutil.copy2(last / name, d / name)
            if not (d / "model.keras").is_file():  # quantize-last: the float model before it
                shutil.copy2(results[-2].directory / "model.keras", d / "model.keras")
            if "quantize" not in section.stages:
                (d / "model.tflite").unlink(missing_ok=True)  # the export stage quantizes
            rows = [{"stage": r.stage, **{f"{r.metric} {k}": v for k, v in r.scores.items()}, "int8": r.int8,
                     "params": r.params, "nonzero": r.nonzero_params, "MACs": r.macs, "tflite B": r.tflite_bytes,
                     "arena B": r.arena_bytes} for r in results]
            return {"stages": rows}

        return self.pipe.stage("compress", settings, run)

    def export(self, compressed: StageResult) -> StageResult:
        settings = {"calibration_samples": self.target.calibration_samples, "threshold": self.recipe.exit.threshold,
                    "thresholds": list(self.recipe.evaluate.thresholds),
                    "code": source_hash("toolchain/export", "toolchain/train/evaluate.py",
                                                   "toolchain/verify/int8.py", "toolchain/verify/reference.py")}

        def run(d: Path) -> dict:
            from toolchain.export.tflite import convert_int8
            from toolchain.train.evaluate import path_macs, predict, sweep
            from toolchain.train.loop import load_model
            from toolchain.verify.int8 import predict_tflite

            ds = self.dataset
            model = load_model(compressed.dir)
            if (compressed.dir / "model.tflite").is_file():  # quantized by [compress] (QAT or PTQ)
                shutil.copy2(compressed.dir / "model.tflite", d / "model.tflite")
            else:
                convert_int8(model, ds.x_train[: self.target.calibration_samples], d / "model.tflite")
            if not self.classifier:
                return {"task": ds.task}
            thr = self.recipe.exit.threshold
            exit_f, final_f = predict(model, ds.x_test)
            floats = {FINAL: final_f, **({EXIT: exit_f} if exit_f is not None else {})}
            ints = predict_tflite(d / "model.tflite", ds.x_test)
            macs = path_macs(model)
            sweeps = {}
            for kind, outs in (("float", floats), ("int8", ints)):
                sw = sweep(outs.get(EXIT), outs[FINAL], ds.y_test, self.recipe.evaluate.thresholds, macs)
                sweeps[kind] = sw.to_dict()
            write_json(d / "sweep.json", sweeps)
            return {"accuracy_float": _accuracies(floats, ds.y_test, thr),
                    "accuracy_int8": _accuracies(ints, ds.y_test, thr),
                    "macs": asdict(macs), "test_samples": int(len(ds.y_test))}

        return self.pipe.stage("export", settings, run)

    def compile(self, exported: StageResult) -> StageResult:
        def run(d: Path) -> dict:
            from toolchain.compiler import compile_model

            plan = compile_model(exported.dir / "model.tflite", d / "c", target=self.board.kernels,
                                 early_exit=self.has_exit).plan
            return {"arena_bytes": plan["arena_bytes"], "macs": plan["macs"], "exits": plan["exits"],
                    "weights_bytes": plan["weights_bytes"]}

        settings = {"kernels": self.board.kernels, "early_exit": self.has_exit,
                    "code": source_hash("toolchain/compiler", "firmware/kernels")}
        return self.pipe.stage("compile", settings, run)

    def build(self, compiled: StageResult) -> StageResult:
        from toolchain.compiler.exits import NEVER, threshold_to_int8

        threshold = threshold_to_int8(self.recipe.exit.threshold) if self.has_exit else NEVER
        settings = {"board": self.board.name, "samples": self.target.samples, "threshold": threshold,
                    "code": source_hash("firmware", "boards", "cmake", "CMakeLists.txt", "toolchain/firmware.py")}

        def run(d: Path) -> dict:
            from toolchain.pipeline.deploy import prepare_firmware

            shutil.copytree(compiled.dir / "c", d / "c")
            plan = json.loads((d / "c" / "model_plan.json").read_text())
            ds = self.dataset
            n = min(self.target.samples, len(ds.x_test))
            x = quantize_inputs(ds.x_test[:n], plan["inputs"][0])
            labels = [int(v) for v in ds.y_test[:n]] if self.classifier else None
            np.savez(d / "testset.npz", x=x, y=ds.y_test[:n], threshold=threshold)
            batch = [[s.reshape(plan["inputs"][0]["shape"])] for s in x]
            fw = prepare_firmware(d / "c", plan, self.board, self.root / ".work" / f"cmake-{self.board.name}", batch,
                                  labels, threshold)
            for suffix in (".elf", ".bin", ".hex", ".map"):
                shutil.copy2(fw.elf.with_suffix(suffix), d / f"firmware{suffix}")
            write_json(d / "sizes.json", fw.sizes)
            return {"flash_bytes": fw.sizes["flash_total"], "ram_bytes": fw.sizes["ram_total"], "samples": n}

        return self.pipe.stage("build", settings, run)

    def run(self, exported: StageResult, built: StageResult) -> StageResult:
        def run(d: Path) -> dict:
            from toolchain.pipeline.deploy import run_and_compare

            plan = json.loads((built.dir / "c" / "model_plan.json").read_text())
            sizes = json.loads((built.dir / "sizes.json").read_text())
            data = np.load(built.dir / "testset.npz")
            batch = [[s.reshape(plan["inputs"][0]["shape"])] for s in data["x"]]
            result = run_and_compare(exported.dir / "model.tflite", plan, self.board, built.dir / "firmware.elf",
                                     sizes, batch, int(data["threshold"]), timeout=self.target.timeout, work_dir=d)
            report = result.to_json()
            write_json(d / "run.json", report)
            metrics = {k: v for k, v in result.summary().items() if not k.endswith("_by_part")}
            metrics.update(self._device_accuracy(result, plan, data["y"]))
            if not result.bit_exact:
                raise ToolchainError(
                    f"the device disagrees with LiteRT BUILTIN_REF on {len(result.mismatches)} output(s), exits "
                    f"{'agree' if result.exits_agree else 'differ'} (see {d / 'run.json'})")
            return metrics

        settings = {"board": self.board.name,
                    "code": source_hash("toolchain/runners", "toolchain/pipeline/deploy.py", "toolchain/verify")}
        return self.pipe.stage("run", settings, run, upstream=[exported, built])

    def _device_accuracy(self, result, plan: dict, labels: np.ndarray) -> dict:
        """Predictions from the outputs the device actually produced (the exit it took)."""
        if not self.classifier:
            return {}
        names = [o["name"] for o in plan["outputs"]]

        def predict(outs: list[np.ndarray], exit_: int) -> int:
            early = exit_ < len(plan["exits"])
            name = plan["exits"][exit_]["output"] if early else FINAL if FINAL in names else names[0]
            return int(np.argmax(outs[names.index(name)]))

        preds = [predict(result.run.outputs(plan, k), s.exit) for k, s in enumerate(result.run.samples)]
        exit_count = sum(s.exit < len(plan["exits"]) for s in result.run.samples)
        # LiteRT on the very samples the device ran, to set beside the device accuracy (the test-set figure
        # covers every test sample, the device only the first few).
        host = [predict(outs, exit_) for outs, exit_ in zip(result.reference_outputs, result.expected_exits or [])]
        n = len(preds)
        # The full path's instruction count: a sample that did not leave early (else the sum of all layers).
        full = [result.instructions(k) for k, s in enumerate(result.run.samples) if s.exit == len(plan["exits"])]
        exit_paths = [result.instructions(k) for k, s in enumerate(result.run.samples) if s.exit < len(plan["exits"])]
        return {"device_accuracy": float(np.mean(np.array(preds) == labels[:n])), "device_predictions": preds,
                "host_int8_accuracy_device_samples": float(np.mean(np.array(host) == labels[:n])) if host else None,
                "device_exit_rate": exit_count / n if plan["exits"] else None,
                "instructions_full": round(float(np.mean(full))) if full else None,
                "instructions_exit": round(float(np.mean(exit_paths))) if exit_paths else None}

    def all(self) -> list[StageResult]:
        """Every stage; Ctrl-C stops the run at the latest at the next stage boundary (KeyboardInterrupt)."""
        remove_stale_staging(self.root)  # of runs killed mid-stage
        with self.pipe.interruptible():
            trained = self.train()
            compressed = self.compress(trained)
            exported = self.export(compressed)
            compiled = self.compile(exported)
            built = self.build(compiled)
            self.run(exported, built)
        return self.pipe.results
