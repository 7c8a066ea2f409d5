"""Bit-exact comparison of the generated C (run on the host) with the reference its plan names (LiteRT's
BUILTIN_REF kernels, or tflite-micro)."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from toolchain.compiler.exits import NEVER, reference_exit, taken_outputs
from toolchain.compiler.hostrun import HostModel
from toolchain.compiler.model_plan import ModelPlan, TensorIO
from toolchain.errors import ToolchainError
from toolchain.verify.reference import REFERENCE_NAMES, SHORT_NAMES, ReferenceModel, reference_model

_DETAIL_MAX = 300


@dataclass
class Mismatch:
    sample: int
    output: str
    count: int  # differing elements
    size: int
    positions: list[int]  # first flat indices that differ
    ours: list
    reference: list
    max_abs_diff: float


@dataclass
class CheckReport:
    samples: int
    outputs: list[str]
    mismatches: list[Mismatch] = field(default_factory=list)
    exits: list[int] = field(default_factory=list)  # exit taken per sample
    exit_mismatches: list[tuple[int, int, int]] = field(default_factory=list)  # (sample, ours, reference)
    reference: str = REFERENCE_NAMES["litert"]  # the interpreter compared with

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.exit_mismatches

    def summary(self) -> str:
        if self.exit_mismatches:
            return "EXIT MISMATCH (sample, ours, reference): " + str(self.exit_mismatches[:10])
        if self.ok:
            return (f"bit-exact: {self.samples} random input(s), outputs {', '.join(self.outputs)} identical to "
                    f"{self.reference}")
        lines = [f"MISMATCH against {self.reference} in {len(self.mismatches)} (sample, output) pair(s):"]
        for m in self.mismatches[:10]:
            lines.append(f"  sample {m.sample} output '{m.output}': {m.count}/{m.size} elements differ "
                         f"(max |diff| {m.max_abs_diff:g}) at {m.positions}: ours {m.ours} vs reference {m.reference}")
        return "\n".join(lines)


def random_inputs(specs: Sequence[TensorIO], rng: np.random.Generator) -> list[np.ndarray]:
    """Integer inputs (int8, int16) span their type's whole range; float inputs span the range their quantization
    covers."""
    xs = []
    for s in specs:
        if s.dtype in ("int8", "int16"):
            info = np.iinfo(s.dtype)
            xs.append(rng.integers(info.min, info.max + 1, size=s.shape, dtype=s.dtype))
        else:
            xs.append(rng.uniform(-1.0, 1.0, size=s.shape).astype(np.float32))
    return xs


def compare(sample: int, names: list[str], ours: list[np.ndarray], ref: list[np.ndarray],
            only: list[int] | None = None) -> list[Mismatch]:
    """Element-wise differences between our outputs and the reference's (`only`: these output indices)."""
    found = []
    for i, (name, a, b) in enumerate(zip(names, ours, ref)):
        if only is not None and i not in only:
            continue
        a, b = a.reshape(-1), b.reshape(-1)
        diff = np.flatnonzero(a != b)
        if diff.size:
            pos = diff[:8]
            found.append(Mismatch(sample, name, int(diff.size), int(a.size), pos.tolist(), a[pos].tolist(),
                                  b[pos].tolist(), float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))))
    return found


def check_sample(plan: ModelPlan, k: int, ours: list[np.ndarray], taken: int, reference: list[np.ndarray],
                 exit_threshold: int) -> tuple[int, list[Mismatch]]:
    """The exit LiteRT's outputs imply at `exit_threshold`, and how the outputs valid at the exit we took
    differ from the reference's (not compared when the exits differ)."""
    want = reference_exit(plan, reference, exit_threshold)
    if taken != want:
        return want, []
    return want, compare(k, plan.output_names, ours, reference, taken_outputs(plan, taken))


@contextmanager
def _reference_errors(model_path, name: str):
    """The interpreters report a model they cannot run as RuntimeError or ValueError: make it one error."""
    try:
        yield
    except (RuntimeError, ValueError) as exc:
        detail = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise ToolchainError(f"{name} cannot run {model_path} for the comparison: {detail[:_DETAIL_MAX]}",
                             "the C code was generated, but the reference refuses the model; "
                             "re-export it with TFLiteConverter") from exc


def check_against_reference(model_path: Path | str, model_dir: Path | str, samples: int = 10, seed: int = 0,
                            inputs: list[list[np.ndarray]] | None = None, exit_threshold: int = NEVER) -> CheckReport:
    """Compares with the reference the compiled plan names (`plan.reference`). For early-exit models the exit
    taken must be the one the reference's outputs imply at `exit_threshold`, and the outputs valid at that exit
    must be identical."""
    host = HostModel(model_dir)
    name = SHORT_NAMES.get(host.plan.reference, host.plan.reference)
    with _reference_errors(model_path, name):
        ref = reference_model(model_path, host.plan.reference, litert=ReferenceModel)
    rng = np.random.default_rng(seed)
    report = CheckReport(samples if inputs is None else len(inputs), host.plan.output_names,
                         reference=REFERENCE_NAMES.get(host.plan.reference, host.plan.reference))
    for k in range(report.samples):
        xs = inputs[k] if inputs is not None else random_inputs(host.plan.inputs, rng)
        ours, taken = host.run(xs, exit_threshold)
        with _reference_errors(model_path, name):
            reference = ref.run(xs)
        want, mismatches = check_sample(host.plan, k, ours, taken, reference, exit_threshold)
        report.exits.append(taken)
        if taken != want:
            report.exit_mismatches.append((k, taken, want))
        report.mismatches += mismatches
    return report
