"""ADD on the mve path: LiteRT's double-rounding rescales with VQRDMULH / VQRDMLAH / VRSHL, four lanes a step.

The operand order and constants come from the dsp fold (input1: the input whose factor is exactly 1/2); the
kernel's own formula (firmware/kernels/mve/tm_add_s8.h) is checked here on all 65,536 input pairs too.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from toolchain.compiler.ops.base import flat
from toolchain.compiler.ops.dsp.add import (
    INT32_MAX, INT32_MIN, AddFold, c_init, fold_add, kernel_operands, reference, srdhm,
)
from toolchain.compiler.ops.variants import Variant, register_variant


def vrshl_right(x: np.ndarray, e: int) -> np.ndarray:
    """VRSHL by -e: round half up."""
    return (x + (1 << (e - 1))) >> e


def kernel_model(a: np.ndarray, b: np.ndarray, fold: AddFold) -> tuple[np.ndarray, bool]:
    """What tm_add_s8_mve computes, and whether every intermediate stays in int32."""
    e2, eo = fold.input2_shift, fold.output_shift
    if e2 == 0:
        total = (a + b) * (1 << 19) + ((fold.offsets[0] + fold.offsets[1]) << 19)
        parts = [total]
    else:
        x = b * (1 << 20) + (fold.offsets[1] << 20)
        t = srdhm(x, fold.input2_multiplier)
        r2 = vrshl_right(t + (t >> 31), e2)
        total = a * (1 << 19) + (fold.offsets[0] << 19) + r2
        parts = [x, t, r2, total]
    acc = (fold.output_offset << eo) + (total >> 31)
    y = acc + srdhm(total, fold.output_multiplier)
    parts += [acc, y, y + (1 << (eo - 1))]
    in_range = all(int(p.min()) >= INT32_MIN and int(p.max()) <= INT32_MAX for p in parts)
    return np.clip(vrshl_right(y, eo), *fold.activation), in_range


def kernel_params(fold: AddFold) -> dict:
    """tm_add_s8_mve_params (mve/tm_add_s8.h) of a fold, field by field."""
    equal = fold.input2_shift == 0
    return {
        "input1_offset": (fold.offsets[0] + (fold.offsets[1] if equal else 0)) << 19,
        "input2_offset": 0 if equal else fold.offsets[1] << 20,
        "input2_multiplier": 0 if equal else fold.input2_multiplier,
        "input2_shift": fold.input2_shift,
        "output_multiplier": fold.output_multiplier,
        "output_offset": fold.output_offset << fold.output_shift,
        "output_shift": fold.output_shift,
        "activation": {"min": fold.activation[0], "max": fold.activation[1]},
    }


@lru_cache(maxsize=64)
def _exact(fold: AddFold) -> bool:
    grid = np.arange(-128, 128, dtype=np.int64)
    a, b = np.meshgrid(grid, grid, indexing="ij")
    got, in_range = kernel_model(a, b, fold)
    m2 = (1 << 30, 0) if fold.input2_shift == 0 else (fold.input2_multiplier, -fold.input2_shift)
    rescales = [(1 << 30, 0), m2, (fold.output_multiplier, -fold.output_shift)]
    return in_range and bool(np.array_equal(got, reference(a, b, fold, rescales)))


@register_variant("ADD", "mve")
class AddMve(Variant):
    kernel = "tm_add_s8_mve"

    def applies(self, op, g):
        fold = fold_add(op, g)
        return fold is not None and _exact(fold)

    def kernel_for(self, op, g):
        return self.kernel

    def scratch_bytes(self, op, g):
        return 0  # tm_add_s8_mve_get_buffer_size

    def emit(self, op, g, em):
        fold = fold_add(op, g)
        params = em.static("tm_add_s8_mve_params", "add_mve", c_init(kernel_params(fold)))
        in1, in2 = kernel_operands(op, fold)
        dims = em.dims_value(flat(g.tensors[op.outputs[0]]))
        return (f"{self.kernel}({em.context()}, &{params}, {dims}, {em.ptr(in1)}, {dims}, {em.ptr(in2)}, "
                f"{dims}, {em.ptr(op.outputs[0])})")

