"""compile -> embed test set -> build firmware -> run on the emulator -> compare with LiteRT, measured."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolchain.boards import Board
from toolchain.compiler import compile_model
from toolchain.compiler.exits import NEVER
from toolchain.compiler.quant import quantize_array
from toolchain.errors import ToolchainError
from toolchain.firmware import Firmware, build_firmware, check_fits, write_testset
from toolchain.runners.plugin.icount import build_plugin, marker_address, plugin_args, read_counts
from toolchain.runners.protocol import RunResult
from toolchain.runners.qemu import run_qemu
from toolchain.verify.check import random_inputs
from toolchain.verify.device import compare_run
from toolchain.verify.tensors import TensorComparison


def load_inputs(path: Path, spec: dict, samples: int | None) -> np.ndarray:
    """A .npy of shape [N, *input shape], N >= 1, int8 or finite float (quantized with the model input's scale and
    zero point); its first `samples` samples (all when None)."""
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ToolchainError(f"cannot read inputs {path}: {exc}", "give a .npy file saved with numpy.save") from exc
    if not isinstance(x, np.ndarray):  # an .npz archive
        x.close()
        raise ToolchainError(f"inputs {path} is an .npz archive, not a .npy array", "save one array with numpy.save")
    shape = tuple(spec["shape"][1:]) if spec["shape"] and spec["shape"][0] == 1 else tuple(spec["shape"])
    if x.ndim == 0 or x.shape[1:] != shape:
        raise ToolchainError(f"inputs {path} have shape {x.shape}, expected [N, {', '.join(map(str, shape))}]")
    if len(x) == 0:
        raise ToolchainError(f"inputs {path} hold no samples (shape {x.shape})")
    want = np.dtype(spec["dtype"])
    if x.dtype != want and x.dtype.kind != "f":
        raise ToolchainError(f"inputs {path} are {x.dtype}, expected {want} or float (quantized with the model "
                             "input's scale and zero point)", f"convert them, e.g. x.astype(np.{want})")
    if x.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
        if bad.size:
            raise ToolchainError(f"inputs {path} hold NaN or infinite values (sample(s) "
                                 f"{', '.join(map(str, bad[:5]))}{' ...' if bad.size > 5 else ''})")
    if samples is not None:
        if not 1 <= samples <= len(x):
            raise ToolchainError(f"--samples {samples} but inputs {path} hold {len(x)} sample(s)",
                                 f"give --samples between 1 and {len(x)}, or leave it out to run them all")
        x = x[:samples]
    if want == np.int8 and x.dtype.kind == "f":
        x = quantize_array(x, spec["scale"], spec["zero_point"])
    return x


def exact_layer_counts(hits: list[int], run: RunResult) -> list[list[int | None]]:
    """Per sample and layer, the instructions between profiling markers counted by the TCG plugin.

    The harness calls the marker twice back to back first (its cost: hits[1] - hits[0]), then for each
    sample once before every layer that runs and once after the last."""
    if len(hits) < 2:
        raise ToolchainError(f"the instruction-count plugin saw {len(hits)} profiling markers, expected more")
    marker = hits[1] - hits[0]
    pos, counts = 2, []
    for s in run.samples:
        ran = [i for i, t in enumerate(s.layer_ticks) if t is not None]
        marks = hits[pos: pos + len(ran) + 1]
        if len(marks) != len(ran) + 1:
            raise ToolchainError("the instruction-count plugin's markers do not match the harness output")
        pos += len(ran) + 1
        layer = [None] * len(s.layer_ticks)
        for j, i in enumerate(ran):
            layer[i] = marks[j + 1] - marks[j] - marker
        counts.append(layer)
    return counts


@dataclass
class DeployResult:
    board: Board
    plan: dict
    run: RunResult
    firmware: dict  # size report
    mismatches: list
    reference_outputs: list[list[np.ndarray]]
    exact_layers: list[list[int | None]] | None = None  # from the TCG plugin (--exact)
    exit_threshold: int = NEVER
    expected_exits: list[int] | None = None  # the exit LiteRT's outputs imply for each sample
    tensors: TensorComparison | None = None  # every layer's output vs LiteRT's (--dump-tensors)

    @property
    def exits(self) -> list[int]:
        return [s.exit for s in self.run.samples]

    @property
    def exits_agree(self) -> bool:
        return self.expected_exits is None or self.exits == self.expected_exits

    @property
    def bit_exact(self) -> bool:
        return not self.mismatches and self.exits_agree

    def instructions(self, k: int) -> float:
        """Instructions of sample k's inference, the profiling markers' own cost removed."""
        s = self.run.samples[k]
        marker = int(self.run.header.get("marker_ticks", 0))
        ran = sum(1 for t in s.layer_ticks if t is not None)
        return self.board.ticks_to_instructions(s.ticks - (ran + 1) * marker)

    def layer_instructions(self, k: int) -> list[float | None]:
        if self.exact_layers is not None:
            return list(self.exact_layers[k])
        marker = int(self.run.header.get("marker_ticks", 0))
        return [None if t is None else self.board.ticks_to_instructions(t - marker)
                for t in self.run.samples[k].layer_ticks]

    def summary(self) -> dict:
        n = len(self.run.samples)
        instr = [self.instructions(k) for k in range(n)]
        mean = float(np.mean(instr)) if instr else 0.0
        return {
            "board": self.board.name,
            "samples": n,
            "bit_exact": self.bit_exact,
            "reference": "LiteRT BUILTIN_REF",
            "instructions_mean": round(mean),
            "exit_threshold": self.exit_threshold,
            "exits": len(self.plan["exits"]),
            "exit_rate": (sum(e < len(self.plan["exits"]) for e in self.exits) / n
                          if self.plan["exits"] and n else None),
            "instructions_per_mac": mean / self.plan["macs"] if self.plan["macs"] else None,
            "layer_counts": "exact (TCG plugin)" if self.exact_layers is not None else "SysTick under -icount",
            "estimated_latency_ms": self.board.estimated_ms(mean),
            "cpi": self.board.cpi,
            "cpi_calibrated": self.board.cpi_calibrated,
            "clock_hz": self.board.clock_hz,
            "macs": self.plan["macs"],
            "arena_bytes": self.plan["arena_bytes"],
            "stack_bytes": self.run.stack_used,
            "flash_bytes": self.firmware["flash_total"],
            "ram_bytes": self.firmware["ram_total"],
            "flash_by_part": self.firmware["flash"],
            "ram_by_part": self.firmware["ram"],
        }

    def to_json(self) -> dict:
        # The per-layer view of a sample that ran every layer (one that did not leave early), if any.
        full = [k for k, x in enumerate(self.run.samples) if x.exit == len(self.plan["exits"])]
        shown = full[0] if full else 0
        layers = [{"index": i, "op": op, "macs": macs, "instructions": ins}
                  for i, ((op, macs), ins) in enumerate(zip(self.run.layers, self.layer_instructions(shown)))] \
            if self.run.samples else []
        return {
            **self.summary(),
            "layers_sample": shown if self.run.samples else None,
            "layers": layers,
            "samples_detail": [
                {"index": s.index, "exit": s.exit, "instructions": self.instructions(k),
                 "layer_instructions": self.layer_instructions(k),
                 "outputs": {o["name"]: a.reshape(-1).tolist()
                             for o, a in zip(self.plan["outputs"], self.run.outputs(self.plan, k))}}
                for k, s in enumerate(self.run.samples)
            ],
            "mismatches": [m.__dict__ for m in self.mismatches],
            "layer_tensors": None if self.tensors is None else {
                "identical": self.tensors.identical, "layers_compared": self.tensors.layers_compared,
                "first_differences": [d.__dict__ for d in self.tensors.first_differences]},
        }


def make_batch(plan: dict, inputs: np.ndarray | None, samples: int, seed: int) -> list[list[np.ndarray]]:
    """The samples to embed: the given inputs (single-input models), or `samples` seeded random ones."""
    if inputs is None:
        check_samples(samples)
        rng = np.random.default_rng(seed)
        return [random_inputs(plan["inputs"], rng) for _ in range(samples)]
    if len(plan["inputs"]) != 1:
        raise ToolchainError("--inputs supports single-input models only")
    if len(inputs) == 0:
        raise ToolchainError("--inputs hold no samples")
    return [[x.reshape(plan["inputs"][0]["shape"])] for x in inputs]


def check_samples(samples) -> None:
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ToolchainError(f"samples must be an integer >= 1, got {samples!r}")


def check_timeout(timeout) -> None:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
            or timeout <= 0:
        raise ToolchainError(f"the emulator timeout must be a finite number of seconds > 0, got {timeout!r}")


def prepare_firmware(model_dir: Path, plan: dict, board: Board, build_dir: Path, batch: list[list[np.ndarray]],
                     labels: list[int] | None = None, exit_threshold: int = NEVER,
                     dump_tensors: bool = False) -> Firmware:
    """Embed the test set, check the memories, build the image."""
    testset_bytes = write_testset(model_dir, batch, labels, exit_threshold)
    check_fits(plan, board, testset_bytes)
    return build_firmware(model_dir, board, build_dir, dump_tensors=dump_tensors)


def run_and_compare(tflite: Path, plan: dict, board: Board, elf: Path, sizes: dict, batch: list[list[np.ndarray]],
                    exit_threshold: int = NEVER, exact: bool = False, timeout: float = 300.0,
                    work_dir: Path | None = None) -> DeployResult:
    """Run the image in QEMU and compare every sample with LiteRT BUILTIN_REF on the same inputs; with a
    TM_DUMP_TENSORS image, also every layer's output with LiteRT's intermediate tensors."""
    extra, counts_file = [], Path(work_dir or elf.parent) / "icount.txt"
    if exact:
        counts_file.unlink(missing_ok=True)
        extra = plugin_args(build_plugin(counts_file.parent / "plugin"), marker_address(elf), counts_file)
    run = run_qemu(elf, board, timeout=timeout, extra_args=extra)
    if len(run.samples) != len(batch):
        raise ToolchainError(f"the firmware reported {len(run.samples)} samples, {len(batch)} were embedded")
    compared = compare_run(tflite, plan, run, batch, exit_threshold)
    exact_layers = exact_layer_counts(read_counts(counts_file)[0], run) if exact else None
    return DeployResult(board, plan, run, sizes, compared.mismatches, compared.reference_outputs, exact_layers,
                        exit_threshold, compared.expected_exits, compared.tensors)


def deploy(tflite: Path, board: Board, out_dir: Path, *, inputs: np.ndarray | None = None, samples: int = 4,
           labels: list[int] | None = None, seed: int = 0, timeout: float = 300.0, exact: bool = False,
           early_exit: bool = False, exit_threshold: int = NEVER, dump_tensors: bool = False,
           progress=print) -> DeployResult:
    """compile -> embed -> build -> run -> compare. `exit_threshold` is in the int8 softmax domain.
    `dump_tensors`: the firmware prints every layer's output and each is compared with LiteRT's."""
    out_dir = Path(out_dir)
    if inputs is None:
        check_samples(samples)
    check_timeout(timeout)
    progress(f"compiling {tflite}")
    plan = compile_model(tflite, out_dir / "c", target=board.kernels, early_exit=early_exit).plan
    batch = make_batch(plan, inputs, samples, seed)
    progress(f"building firmware for {board.name} ({board.cpu})")
    fw = prepare_firmware(out_dir / "c", plan, board, out_dir / f"fw-{board.name}", batch, labels, exit_threshold,
                          dump_tensors)
    progress(f"running {len(batch)} sample(s) in qemu-system-arm -M {board.qemu_machine}")
    return run_and_compare(tflite, plan, board, fw.elf, fw.sizes, batch, exit_threshold, exact, timeout)
