"""MUL on the dsp path: LiteRT's 64-bit requantization of the product in 32-bit SMMLAR arithmetic.

Two shapes take the variant: both inputs the output's size (`tm_mul_s8_dsp`), and the per-channel broadcast of
squeeze-and-excitation, an [N, H, W, C] tensor times a [C] gate, either operand order (`tm_mul_s8_dsp_channel`).
The derivation is in firmware/kernels/dsp/tm_mul_s8.h. `fold_mul` checks the kernel's formula against LiteRT's
MultiplyByQuantizedMultiplier on every product the op can form, [-2^16, 2^16], before the variant is chosen.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np

from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import activation
from toolchain.compiler.ops.dsp.add import INT32_MAX, INT32_MIN, rdbp, srdhm
from toolchain.compiler.ops.mul import rescale
from toolchain.compiler.ops.params import Activation, CStruct
from toolchain.compiler.ops.variants import Variant, register_variant

PRODUCTS = np.arange(-(1 << 16), (1 << 16) + 1, dtype=np.int64)  # |(x1 + offset1) * (x2 + offset2)| <= 255^2


@dataclass(frozen=True)
class MulFold:
    """One MUL as the fast kernels see it: input1 the output-sized operand."""
    channel: bool  # input2 is a [C] gate broadcast over input1's pixels; else both have the output's size
    input1: int  # index into op.inputs of the kernel's input1
    offsets: tuple[int, int]  # -zero_point of (input1, input2)
    multiplier: int
    shift: int  # QuantizeMultiplier's: > 0 left, < 0 right
    output_offset: int
    activation: tuple[int, int]

    @property
    def left_shift(self) -> int:
        return max(self.shift, 0)

    @property
    def right_shift(self) -> int:
        return max(-self.shift, 0)


@dataclass(frozen=True)
class MulDspParams(CStruct):
    CTYPE: ClassVar[str] = "tm_mul_s8_dsp_params"
    PREFIX: ClassVar[str] = "mul_dsp"
    input1_offset: int
    input2_offset: int
    product_shift: int
    multiplier: int
    rounding: int
    right_shift: int
    activation: Activation


def wrap32(x: np.ndarray) -> np.ndarray:
    return (x + (1 << 31)) % (1 << 32) - (1 << 31)


def reference(p: np.ndarray, fold: MulFold) -> np.ndarray:
    """LiteRT's MulElementwise from the product of the offset inputs: MultiplyByQuantizedMultiplier (the left
    shift wrapping in int32), the output offset, the activation clamp."""
    shifted = wrap32(p << fold.left_shift)
    out = rdbp(srdhm(shifted, fold.multiplier), fold.right_shift) + fold.output_offset
    return np.clip(out, *fold.activation)


def smmlar(a: np.ndarray, b: int, acc: int) -> np.ndarray:
    return ((acc << 32) + a * b + (1 << 31)) >> 32


def kernel_params(fold: MulFold) -> MulDspParams:
    e = fold.right_shift
    rounding = (1 << (e - 1)) + (fold.output_offset << e) if e else fold.output_offset
    return MulDspParams(input1_offset=fold.offsets[0], input2_offset=fold.offsets[1],
                        product_shift=fold.left_shift + 1, multiplier=fold.multiplier, rounding=rounding,
                        right_shift=e, activation=Activation(*fold.activation))


def kernel_model(p: np.ndarray, fold: MulFold) -> tuple[np.ndarray, bool]:
    """What tm_mul_s8_dsp computes from a product, and whether every intermediate stays in int32."""
    k = kernel_params(fold)
    twice = p << k.product_shift
    y = smmlar(twice, k.multiplier, k.rounding)
    parts = [twice, y, np.array([k.rounding])]
    if k.right_shift:
        y = y + (twice >> 31)
        parts.append(y)
        y = y >> k.right_shift
    in_range = all(int(v.min()) >= INT32_MIN and int(v.max()) <= INT32_MAX for v in parts)
    return np.clip(np.clip(y, -128, 127), *fold.activation), in_range


@lru_cache(maxsize=256)
def exact(fold: MulFold, model=kernel_model) -> bool:
    """The kernel formula `model` equals LiteRT's on every product, its intermediates inside int32."""
    got, in_range = model(PRODUCTS, fold)
    return in_range and bool(np.array_equal(got, reference(PRODUCTS, fold)))


def _gate_of(big: tuple[int, ...], small: tuple[int, ...], out: tuple[int, ...]) -> bool:
    """`small` is a [.., C] vector (outer dims 1) broadcast along the pixels of `big`, which is the output."""
    return (tuple(big) == tuple(out) and len(out) >= 2 and len(small) >= 1 and out[-1] > 1
            and small[-1] == out[-1] and all(d == 1 for d in small[:-1]) and len(small) <= len(out)
            and int(np.prod(out[:-1])) > 1)


def fold_mul(op, g) -> MulFold | None:
    """The fast kernels' view of this MUL, or None when neither shape applies."""
    a, b, out = (g.tensors[t] for t in (*op.inputs[:2], op.outputs[0]))
    if a.size == b.size == out.size:
        channel, first = False, 0
    elif _gate_of(a.shape, b.shape, out.shape):
        channel, first = True, 0
    elif _gate_of(b.shape, a.shape, out.shape):
        channel, first = True, 1
    else:
        return None
    multiplier, shift = q.quantize_multiplier(rescale(a, b, out))
    x1, x2 = (a, b) if first == 0 else (b, a)
    return MulFold(channel=channel, input1=first, offsets=(-x1.zero_point, -x2.zero_point), multiplier=multiplier,
                   shift=shift, output_offset=out.zero_point, activation=tuple(activation(op, out)))


def kernel_operands(op, fold: MulFold) -> tuple[int, int]:
    return (op.inputs[0], op.inputs[1]) if fold.input1 == 0 else (op.inputs[1], op.inputs[0])


def fast_call(kernel: str, params: str, op, g, fold: MulFold, em) -> str:
    """`kernel[_channel](ctx, params, input1, input2, output)`: input1 and the output as {1, 1, pixels, C} (C: 1
    for same-size inputs, which the kernel walks as one run), input2 as {1, 1, 1, C} or input1's dims."""
    out = g.tensors[op.outputs[0]]
    depth = out.shape[-1] if fold.channel else out.size
    big = em.dims_value((1, 1, out.size // depth, depth))
    small = em.dims_value((1, 1, 1, depth)) if fold.channel else big
    in1, in2 = kernel_operands(op, fold)
    name = kernel + ("_channel" if fold.channel else "")
    return (f"{name}({em.context()}, &{params}, {big}, {em.ptr(in1)}, {small}, {em.ptr(in2)}, {big}, "
            f"{em.ptr(op.outputs[0])})")


@register_variant("MUL", "dsp")
class MulDsp(Variant):
    kernel = "tm_mul_s8_dsp"

    def applies(self, op, g):
        fold = fold_mul(op, g)
        return fold is not None and exact(fold)

    def kernel_for(self, op, g):
        return self.kernel + ("_channel" if fold_mul(op, g).channel else "")

    def scratch_bytes(self, op, g):
        return 0  # tm_mul_s8_dsp[_channel]_get_buffer_size

    def emit(self, op, g, em):
        fold = fold_mul(op, g)
        return fast_call(self.kernel, em.params(kernel_params(fold)), op, g, fold, em)
