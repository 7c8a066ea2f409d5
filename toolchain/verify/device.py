"""The device against the reference: every sample a firmware run reported, compared with the reference the
plan names (LiteRT BUILTIN_REF or tflite-micro) on the same inputs (outputs and the exit taken), and, for a
TM_DUMP_TENSORS image, every layer's output with the reference's intermediate tensors."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolchain.compiler.model_plan import ModelPlan
from toolchain.runners.protocol import RunResult
from toolchain.verify.check import Mismatch, check_sample
from toolchain.verify.reference import REFERENCE_NAMES, reference_model
from toolchain.verify.tensors import TensorComparison, compare_layer_tensors


@dataclass
class DeviceComparison:
    mismatches: list[Mismatch]
    reference_outputs: list[list[np.ndarray]]
    expected_exits: list[int]  # the exit the reference's outputs imply for each sample
    tensors: TensorComparison | None  # every layer's output vs the reference's (TM_DUMP_TENSORS images only)


def compare_run(tflite: Path, plan: ModelPlan, run: RunResult, batch: list[list[np.ndarray]],
                exit_threshold: int) -> DeviceComparison:
    """Compare the device's run of `batch` (one entry per sample it reported) with `plan.reference`'s interpreter
    on `tflite`."""
    ref = reference_model(tflite, plan.reference, all_tensors=bool(run.tensors))
    mismatches, ref_outputs, expected_exits, ref_tensors = [], [], [], []
    for k, xs in enumerate(batch):
        if run.tensors:  # one inference gives both the intermediate tensors and the outputs
            ref_tensors.append(ref.run_all(xs))
            expected = [ref_tensors[-1][t.id] for t in ref.outputs]
        else:
            expected = ref.run(xs)
        want, found = check_sample(plan, k, run.outputs(plan, k), run.samples[k].exit, expected, exit_threshold)
        ref_outputs.append(expected)
        expected_exits.append(want)
        mismatches += found
    tensors = None
    if run.tensors:
        names = {t.id: t.name for t in plan.tensors if t.id is not None}
        tensors = compare_layer_tensors(run.tensors, ref_tensors, [op for op, _ in run.layers], names,
                                        REFERENCE_NAMES.get(plan.reference, plan.reference))
    return DeviceComparison(mismatches, ref_outputs, expected_exits, tensors)
