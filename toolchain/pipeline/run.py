"""The pipeline: recipe -> trained model -> compressed -> int8 .tflite -> C -> firmware -> emulator run.

Stage directories under the run root (see stages.py for caching):
  train/     model.keras, metrics.json, recipe.json
  compress/  model.keras (the model after the recipe's [compress] stages), stages.json
  export/    model.tflite, accuracy of float and int8 on the test split, threshold sweeps
  compile/   c/ (model.c, model.h, model_plan.json, kernels/)
  build/     c/, firmware.elf/.bin/.hex/.map, firmware.json, testset.json/.npz (FirmwareImage and its TestSet)
  run/       run.json (device outputs, exits, instructions), device_run.json, uart.log (the DeviceRun)
and, last, summary.json, report.md, report.html and the plots in the run root.
"""
from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from toolchain.boards import get_board
from toolchain.compiler.exits import ExitThreshold
from toolchain.compiler.model_plan import TensorIO
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


def quantize_inputs(x: np.ndarray, spec: TensorIO) -> np.ndarray:
    """Float samples -> the model input's int8, as the host int8 evaluation quantizes them."""
    if spec.dtype != "int8":
        return x.astype(np.float32)
    return quantize_array(x, spec.scale, spec.zero_point)


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
            from toolchain.pipeline.api import compress_specs, compress_stage
            from toolchain.train.loop import load_model

            results = compress_stage(load_model(trained.dir), self.dataset, compress_specs(self.recipe), d / "stages",
                                     recipe=self.recipe, progress=lambda line: self.progress("    " + line))
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
            from toolchain.pipeline.api import compile_stage, tflm_arena

            plan = compile_stage(exported.dir / "model.tflite", d / "c", target=self.board.kernels,
                                 early_exit=self.has_exit).plan
            tflm, _ = tflm_arena(exported.dir / "model.tflite")
            return {"arena_bytes": plan.arena_bytes, "macs": plan.macs, "ram_parts": plan.ram_parts(),
                    "tflm_head_bytes": tflm.head if tflm else None, "tflm_total_bytes": tflm.total if tflm else None,
                    "exits": [ex.__dict__ for ex in plan.exits], "weights_bytes": plan.weights_bytes}

        settings = {"kernels": self.board.kernels, "early_exit": self.has_exit,
                    "code": source_hash("toolchain/compiler", "firmware/kernels")}
        return self.pipe.stage("compile", settings, run)

    def build(self, compiled: StageResult) -> StageResult:
        threshold = ExitThreshold.of(self.recipe.exit.threshold) if self.has_exit else ExitThreshold.never()
        settings = {"board": self.board.name, "samples": self.target.samples, "threshold": threshold.int8,
                    "code": source_hash("firmware", "boards", "cmake", "CMakeLists.txt", "toolchain/firmware.py",
                                        "toolchain/pipeline/api.py")}

        def run(d: Path) -> dict:
            from toolchain.compiler.driver import CompiledModel
            from toolchain.pipeline.api import build_stage

            model = CompiledModel.load(compiled.dir / "c").save(d / "c")
            spec = model.plan.inputs[0]
            ds = self.dataset
            n = min(self.target.samples, len(ds.x_test))
            x = quantize_inputs(ds.x_test[:n], spec)
            labels = [int(v) for v in ds.y_test[:n]] if self.classifier else None
            image = build_stage(model, self.board, self.root / ".work" / f"cmake-{self.board.name}",
                                batch=[[s.reshape(spec.shape)] for s in x], labels=labels, exit_threshold=threshold)
            image = image.save(d)
            return {"flash_bytes": image.sizes.flash_total, "ram_bytes": image.sizes.ram_total, "samples": n}

        return self.pipe.stage("build", settings, run)

    def run(self, exported: StageResult, built: StageResult) -> StageResult:
        def run(d: Path) -> dict:
            from toolchain.compiler.driver import CompiledModel
            from toolchain.firmware import FirmwareImage
            from toolchain.pipeline.api import run_stage

            image = FirmwareImage.load(built.dir)
            result = run_stage(exported.dir / "model.tflite", CompiledModel.load(built.dir / "c"), image,
                               timeout=self.target.timeout, work_dir=d)
            result.save(d)
            metrics = {k: v for k, v in result.summary().items() if not k.endswith("_by_part")}
            metrics.update(self._device_accuracy(result, image.labels))
            if not result.bit_exact:
                raise ToolchainError(
                    f"the device disagrees with LiteRT BUILTIN_REF on {len(result.mismatches)} output(s), exits "
                    f"{'agree' if result.exits_agree else 'differ'} (see {d / 'run.json'})")
            return metrics

        settings = {"board": self.board.name,
                    "code": source_hash("toolchain/runners", "toolchain/pipeline/deploy.py",
                                        "toolchain/pipeline/api.py", "toolchain/verify")}
        return self.pipe.stage("run", settings, run, upstream=[exported, built])

    def _device_accuracy(self, result, labels: tuple[int, ...] | None) -> dict:
        """Predictions from the outputs the device actually produced (the exit it took)."""
        if not self.classifier or labels is None:
            return {}
        plan = result.plan
        names = plan.output_names
        labels = np.array(labels)

        def predict(outs: list[np.ndarray], exit_: int) -> int:
            early = exit_ < len(plan.exits)
            name = plan.exits[exit_].output if early else FINAL if FINAL in names else names[0]
            return int(np.argmax(outs[names.index(name)]))

        preds = [predict(result.run.outputs(plan, k), s.exit) for k, s in enumerate(result.run.samples)]
        exit_count = sum(s.exit < len(plan.exits) for s in result.run.samples)
        # LiteRT on the very samples the device ran, to set beside the device accuracy (the test-set figure
        # covers every test sample, the device only the first few).
        host = [predict(outs, exit_) for outs, exit_ in zip(result.reference_outputs, result.expected_exits or [])]
        n = len(preds)
        # The full path's instruction count: a sample that did not leave early (else the sum of all layers).
        full = [result.instructions(k) for k, s in enumerate(result.run.samples) if s.exit == len(plan.exits)]
        exit_paths = [result.instructions(k) for k, s in enumerate(result.run.samples) if s.exit < len(plan.exits)]
        return {"device_accuracy": float(np.mean(np.array(preds) == labels[:n])), "device_predictions": preds,
                "host_int8_accuracy_device_samples": float(np.mean(np.array(host) == labels[:n])) if host else None,
                "device_exit_rate": exit_count / n if plan.exits else None,
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
