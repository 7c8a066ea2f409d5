"""MUL on the mve path: LiteRT's requantization of the product with VQRDMLAH / VRSHL, sixteen elements a step.

The same two shapes as the dsp variant (ops/dsp/mul.py: inputs of the output's size, the per-channel broadcast of
squeeze-and-excitation). The kernel's formula (firmware/kernels/mve/tm_mul_s8.h) is checked here against
LiteRT's on every product in [-2^16, 2^16] before the variant is chosen.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from toolchain.compiler.ops.dsp.add import INT32_MAX, INT32_MIN, srdhm
from toolchain.compiler.ops.dsp.mul import MulFold, exact, fast_call, fold_mul
from toolchain.compiler.ops.mve.add import vrshl_right
from toolchain.compiler.ops.params import Activation, CStruct
from toolchain.compiler.ops.variants import Variant, register_variant


@dataclass(frozen=True)
class MulMveParams(CStruct):
    CTYPE: ClassVar[str] = "tm_mul_s8_mve_params"
    PREFIX: ClassVar[str] = "mul_mve"
    input1_offset: int
    input2_offset: int
    left_shift: int
    multiplier: int
    output_offset: int
    right_shift: int
    activation: Activation


def kernel_params(fold: MulFold) -> MulMveParams:
    return MulMveParams(input1_offset=fold.offsets[0], input2_offset=fold.offsets[1], left_shift=fold.left_shift,
                        multiplier=fold.multiplier, output_offset=fold.output_offset << fold.right_shift,
                        right_shift=fold.right_shift, activation=Activation(*fold.activation))


def kernel_model(p: np.ndarray, fold: MulFold) -> tuple[np.ndarray, bool]:
    """What tm_mul_s8_mve computes from a product, and whether every intermediate stays in int32."""
    k = kernel_params(fold)
    e = k.right_shift
    if e:
        acc = k.output_offset + (p >> 31)
        y = acc + srdhm(p, k.multiplier)
        parts = [acc, y, y + (1 << (e - 1))]
        y = vrshl_right(y, e)
    else:
        x = p << k.left_shift
        y = k.output_offset + srdhm(x, k.multiplier)
        parts = [x, y]
    in_range = all(int(v.min()) >= INT32_MIN and int(v.max()) <= INT32_MAX for v in parts)
    return np.clip(np.clip(y, -128, 127), *fold.activation), in_range


@register_variant("MUL", "mve")
class MulMve(Variant):
    kernel = "tm_mul_s8_mve"

    def applies(self, op, g):
        fold = fold_mul(op, g)
        return fold is not None and exact(fold, kernel_model)

    def kernel_for(self, op, g):
        return self.kernel + ("_channel" if fold_mul(op, g).channel else "")

    def scratch_bytes(self, op, g):
        return 0  # tm_mul_s8_mve[_channel]_get_buffer_size

    def emit(self, op, g, em):
        fold = fold_mul(op, g)
        return fast_call(self.kernel, em.params(kernel_params(fold)), op, g, fold, em)
