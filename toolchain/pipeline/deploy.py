"""The run stage's artifact, `DeviceRun`: a firmware run on the emulator compared with LiteRT, measured; and the
checks of what a run is given (its inputs, sample count, timeout). The stage functions are in `api.py`."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolchain.boards import Board, get_board
from toolchain.compiler.exits import ExitThreshold
from toolchain.compiler.model_plan import ModelPlan, TensorIO
from toolchain.compiler.quant import quantize_array
from toolchain.errors import ToolchainError
from toolchain.firmware import FirmwareSizes
from toolchain.fsutil import write_atomic, write_json
from toolchain.runners.cycles import CycleModel, cycle_model
from toolchain.runners.plugin.icount import ClassProfile
from toolchain.runners.protocol import RunResult, parse
from toolchain.verify.check import Mismatch
from toolchain.verify.reference import REFERENCE_NAMES
from toolchain.verify.tensors import LayerDiff, TensorComparison

RUN_REPORT, RUN_FILE, UART_LOG, REFERENCE_OUTPUTS = "run.json", "device_run.json", "uart.log", "reference_outputs.npz"


def load_inputs(path: Path, spec: TensorIO, samples: int | None) -> np.ndarray:
    """A .npy of shape [N, *input shape], N >= 1, of the input's integer type or finite float (quantized with the
    model input's scale and zero point); its first `samples` samples (all when None)."""
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ToolchainError(f"cannot read inputs {path}: {exc}", "give a .npy file saved with numpy.save") from exc
    if not isinstance(x, np.ndarray):  # an .npz archive
        x.close()
        raise ToolchainError(f"inputs {path} is an .npz archive, not a .npy array", "save one array with numpy.save")
    shape = tuple(spec.sample_shape)
    if x.ndim == 0 or x.shape[1:] != shape:
        raise ToolchainError(f"inputs {path} have shape {x.shape}, expected [N, {', '.join(map(str, shape))}]")
    if len(x) == 0:
        raise ToolchainError(f"inputs {path} hold no samples (shape {x.shape})")
    want = np.dtype(spec.dtype)
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
    if want in (np.int8, np.int16) and x.dtype.kind == "f":
        x = quantize_array(x, spec.scale, spec.zero_point, want.type)
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


def exact_cycle_counts(profile: ClassProfile, run: RunResult, model: CycleModel
                       ) -> tuple[list[list[int | None]], list[dict[str, int]]]:
    """From a per-class plugin profile: per sample and layer, the estimated cycles between profiling markers (the
    markers' own cost removed, as in `exact_layer_counts`), and per sample the executions per class (and xfer,
    taken) of its inference, markers removed."""
    priced = [model.cycles(profile.counters(h)) for h in profile.hits]
    layers = exact_layer_counts(priced, run)
    per_class = {name: exact_layer_counts([h[1 + i] for h in profile.hits], run)
                 for i, name in enumerate(profile.names)}
    classes = [{name: sum(c for c in counts[k] if c is not None) for name, counts in per_class.items()}
               for k in range(len(run.samples))]
    return layers, classes


LATENCY_FROM_CYCLES = "estimated cycles (no wait states)"
# Under Renode the harness's SysTick ticks are virtual time at PerformanceInMips: no instruction counts.
RENODE_COUNTS = "SysTick ticks under Renode (virtual time at PerformanceInMips, not cycle-exact)"


@dataclass
class DeviceRun:
    """The run stage's artifact: what the device reported, against LiteRT BUILTIN_REF on the same inputs."""
    board: Board
    plan: ModelPlan
    run: RunResult
    firmware: FirmwareSizes
    mismatches: list[Mismatch]
    reference_outputs: list[list[np.ndarray]]
    exact_layers: list[list[int | None]] | None = None  # from the TCG plugin (--exact)
    exit_threshold: ExitThreshold = ExitThreshold.never()
    expected_exits: list[int] | None = None  # the exit LiteRT's outputs imply for each sample
    tensors: TensorComparison | None = None  # every layer's output vs LiteRT's (--dump-tensors)
    exact_cycles: list[list[int | None]] | None = None  # estimated cycles per sample and layer (--exact)
    cycle_classes: list[dict[str, int]] | None = None  # per sample: executions per timing class (--exact)
    # qemu (-icount: instructions), renode (ticks and time only), or board: read from a board's serial port after
    # flashing (DWT cycles on silicon; instructions when the "board" was QEMU behind its GDB server)
    emulator: str = "qemu"

    @property
    def cycle_model(self) -> CycleModel | None:
        return cycle_model(self.board.cpu)

    @property
    def exits(self) -> list[int]:
        return [s.exit for s in self.run.samples]

    @property
    def exits_agree(self) -> bool:
        return self.expected_exits is None or self.exits == self.expected_exits

    @property
    def bit_exact(self) -> bool:
        return not self.mismatches and self.exits_agree

    @property
    def on_silicon(self) -> bool:
        """A real board's run whose DWT cycle counter ran (it reads 0 under QEMU): its cycles are measured."""
        return self.emulator == "board" and bool(self.run.samples) and all(s.cycles > 0 for s in self.run.samples)

    @property
    def counts_instructions(self) -> bool:
        """SysTick under QEMU -icount counts instructions (also when a GDB server flashed the image into QEMU)."""
        return self.emulator != "renode" and not self.on_silicon and self.board.emulated

    def _marker(self) -> int:
        return int(self.run.header.get("marker_ticks", 0))

    def _tick_hz(self) -> int:
        return int(self.run.header.get("tick_hz") or self.board.clock_hz)

    def _ticks_to_cycles(self, ticks: float) -> int:
        return round(ticks * self.board.clock_hz / self._tick_hz())

    def ticks(self, k: int) -> int:
        """SysTick ticks of sample k's inference, the profiling markers' own cost removed."""
        s = self.run.samples[k]
        ran = sum(1 for t in s.layer_ticks if t is not None)
        return s.ticks - (ran + 1) * self._marker()

    def layer_ticks(self, k: int) -> list[int | None]:
        return [None if t is None else t - self._marker() for t in self.run.samples[k].layer_ticks]

    def instructions(self, k: int) -> float | None:
        """Instructions of sample k's inference, the profiling markers' own cost removed (None where SysTick does
        not count instructions: Renode, silicon)."""
        return self.board.ticks_to_instructions(self.ticks(k)) if self.counts_instructions else None

    def layer_instructions(self, k: int) -> list[float | None]:
        if self.exact_layers is not None:
            return list(self.exact_layers[k])
        if not self.counts_instructions:
            return [None] * len(self.run.samples[k].layer_ticks)
        return [None if t is None else self.board.ticks_to_instructions(t) for t in self.layer_ticks(k)]

    def cycles(self, k: int) -> int | None:
        """Cycles of sample k's inference: measured by the DWT counter on silicon (the markers' cost removed), else
        estimated (no wait states) from the TCG plugin; None when neither."""
        if self.on_silicon:
            s = self.run.samples[k]
            ran = sum(1 for t in s.layer_ticks if t is not None)
            return s.cycles - self._ticks_to_cycles((ran + 1) * self._marker())
        if self.exact_cycles is None:
            return None
        return sum(c for c in self.exact_cycles[k] if c is not None)

    def layer_cycles(self, k: int) -> list[int | None] | None:
        if self.on_silicon:
            return [None if t is None else self._ticks_to_cycles(t) for t in self.layer_ticks(k)]
        return None if self.exact_cycles is None else list(self.exact_cycles[k])

    def measured_on(self) -> str:
        if self.on_silicon:
            return "silicon (DWT cycle counter)"
        if self.emulator == "renode":
            return RENODE_COUNTS
        return "emulator (instruction counts)" if self.counts_instructions else "board (SysTick ticks)"

    def summary(self) -> dict:
        n = len(self.run.samples)
        silicon, counting = self.on_silicon, self.counts_instructions
        instr = [self.instructions(k) for k in range(n)] if counting else []
        mean = float(np.mean(instr)) if instr else 0.0
        tick_hz = self._tick_hz()
        ticks = float(np.mean([self.ticks(k) for k in range(n)])) if n else 0.0
        counted = (self.exact_cycles is not None or silicon) and n > 0
        cycles = float(np.mean([self.cycles(k) for k in range(n)])) if counted else None
        model = self.cycle_model if counted and not silicon else None
        return {
            "board": self.board.name,
            "samples": n,
            "bit_exact": self.bit_exact,
            "reference": REFERENCE_NAMES.get(self.plan.reference, self.plan.reference),
            "kernels": self.plan.target,
            "emulator": self.emulator,
            "measured_on": self.measured_on(),
            "instructions_mean": round(mean) if counting else None,
            "ticks_mean": round(ticks),
            "tick_hz": tick_hz,
            "exit_threshold": self.exit_threshold.int8,
            "exits": len(self.plan.exits),
            "exit_rate": (sum(e < len(self.plan.exits) for e in self.exits) / n
                          if self.plan.exits and n else None),
            "instructions_per_mac": mean / self.plan.macs if self.plan.macs and counting else None,
            "layer_counts": ("SysTick on silicon" if silicon else "exact (TCG plugin)" if self.exact_layers is not None
                             else "SysTick under -icount" if counting else self.measured_on()),
            "cycles_mean": None if cycles is None else round(cycles),
            "cycles_per_mac": cycles / self.plan.macs if cycles is not None and self.plan.macs else None,
            "cycles_per_instruction": cycles / mean if cycles is not None and mean else None,
            "cycle_model": "measured (DWT CYCCNT)" if silicon else None if model is None else model.note,
            # measured or estimated cycles when there are any, else instructions x the board's CPI, else ticks
            "estimated_latency_ms": (cycles / self.board.clock_hz * 1e3 if cycles is not None
                                     else self.board.estimated_ms(mean) if counting else ticks / tick_hz * 1e3),
            "latency_from": ("measured cycles" if silicon else LATENCY_FROM_CYCLES if cycles is not None
                             else "instructions x CPI" if counting else self.measured_on()),
            "cpi": self.board.cpi,
            "cpi_calibrated": self.board.cpi_calibrated,
            "clock_hz": self.board.clock_hz,
            "macs": self.plan.macs,
            "arena_bytes": self.plan.arena_bytes,
            "arena_regions": dict(self.plan.arena_regions or {}),  # split over RAM regions: region -> bytes
            "stack_bytes": self.run.stack_used,  # measured: the high-water mark of the painted stack
            "stack_bound_bytes": None if self.firmware.stack_bound is None else self.firmware.stack_bound.bytes,
            "stack_reserved_bytes": self.firmware.stack_reserved,
            "flash_bytes": self.firmware.flash_total,
            "ram_bytes": self.firmware.ram_total,
            "flash_by_part": dict(self.firmware.flash),
            "ram_by_part": dict(self.firmware.ram),
            "regions_by_part": {name: dict(parts) for name, parts in (self.firmware.regions or {}).items()},
        }

    def to_json(self) -> dict:
        # The per-layer view of a sample that ran every layer (one that did not leave early), if any.
        full = [k for k, x in enumerate(self.run.samples) if x.exit == len(self.plan.exits)]
        shown = full[0] if full else 0
        cycles = (self.layer_cycles(shown) if self.run.samples else None) or [None] * len(self.run.layers)
        layers = [{"index": i, "op": op, "macs": macs, "instructions": ins, "ticks": tick, "est_cycles": cyc}
                  for i, ((op, macs), ins, tick, cyc) in enumerate(zip(
                      self.run.layers, self.layer_instructions(shown), self.layer_ticks(shown), cycles))] \
            if self.run.samples else []
        return {
            **self.summary(),
            "layers_sample": shown if self.run.samples else None,
            "layers": layers,
            "samples_detail": [
                {"index": s.index, "exit": s.exit, "instructions": self.instructions(k),
                 "layer_instructions": self.layer_instructions(k), "ticks": self.ticks(k),
                 "layer_ticks": self.layer_ticks(k),
                 "est_cycles": self.cycles(k), "layer_est_cycles": self.layer_cycles(k),
                 "cycle_classes": None if self.cycle_classes is None else self.cycle_classes[k],
                 "outputs": {o.name: a.reshape(-1).tolist()
                             for o, a in zip(self.plan.outputs, self.run.outputs(self.plan, k))}}
                for k, s in enumerate(self.run.samples)
            ],
            "mismatches": [m.__dict__ for m in self.mismatches],
            "stack_bound": None if self.firmware.stack_bound is None else self.firmware.stack_bound.to_dict(),
            "layer_tensors": None if self.tensors is None else {
                "identical": self.tensors.identical, "layers_compared": self.tensors.layers_compared,
                "first_differences": [d.__dict__ for d in self.tensors.first_differences]},
        }

    def save(self, directory: Path) -> None:
        """run.json (the report above), device_run.json (what the report does not keep), the raw UART log (the
        RunResult is parsed back from it), LiteRT's outputs and the model plan."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_json(directory / RUN_REPORT, self.to_json())
        write_json(directory / RUN_FILE, {
            "board": self.board.name, "exit_threshold": self.exit_threshold.to_dict(),
            "firmware": self.firmware.to_dict(), "mismatches": [m.__dict__ for m in self.mismatches],
            "exact_layers": self.exact_layers, "expected_exits": self.expected_exits,
            "exact_cycles": self.exact_cycles, "cycle_classes": self.cycle_classes, "emulator": self.emulator,
            "tensors": None if self.tensors is None else {
                "samples": self.tensors.samples, "layers_compared": self.tensors.layers_compared,
                "first_differences": [d.__dict__ for d in self.tensors.first_differences]},
            "reference_outputs": [len(outs) for outs in self.reference_outputs]})
        write_atomic(directory / UART_LOG, self.run.log)
        np.savez(directory / REFERENCE_OUTPUTS, **{f"{k}_{i}": a for k, outs in enumerate(self.reference_outputs)
                                                   for i, a in enumerate(outs)})
        self.plan.save(directory)

    @classmethod
    def load(cls, directory: Path) -> DeviceRun:
        directory = Path(directory)
        try:
            meta = json.loads((directory / RUN_FILE).read_text())
        except FileNotFoundError:
            raise ToolchainError(f"{directory} has no {RUN_FILE} (not a device run)") from None
        except ValueError as exc:
            raise ToolchainError(f"{directory / RUN_FILE} is not valid JSON: {exc}") from exc
        with np.load(directory / REFERENCE_OUTPUTS, allow_pickle=False) as data:
            reference = [[data[f"{k}_{i}"] for i in range(n)] for k, n in enumerate(meta["reference_outputs"])]
        tensors = meta["tensors"]
        return cls(get_board(meta["board"]), ModelPlan.load(directory), parse((directory / UART_LOG).read_text()),
                   FirmwareSizes.from_dict(meta["firmware"]), [Mismatch(**m) for m in meta["mismatches"]], reference,
                   meta["exact_layers"], ExitThreshold.from_dict(meta["exit_threshold"]), meta["expected_exits"],
                   None if tensors is None else TensorComparison(
                       tensors["samples"], tensors["layers_compared"],
                       [LayerDiff(**d) for d in tensors["first_differences"]]),
                   meta.get("exact_cycles"), meta.get("cycle_classes"), meta.get("emulator", "qemu"))


DeployResult = DeviceRun  # the name callers used before the artifact was typed


def check_samples(samples) -> None:
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ToolchainError(f"samples must be an integer >= 1, got {samples!r}")


def check_timeout(timeout) -> None:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
            or timeout <= 0:
        raise ToolchainError(f"the emulator timeout must be a finite number of seconds > 0, got {timeout!r}")
