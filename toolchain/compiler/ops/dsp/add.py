"""ADD on the dsp path: LiteRT's 64-bit double-rounding rescales in 32-bit SMMULR/SMMLAR arithmetic.

The derivation is in firmware/kernels/dsp/tm_add_s8.h. `fold` computes the kernel's constants and checks every
(input1, input2) pair (65,536) against LiteRT's formula with numpy before the variant is chosen, so a layer whose
scales break an assumption (a right shift of 0, an intermediate outside int32) keeps the portable kernel.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from toolchain.compiler import quant as q
from toolchain.compiler.ops.add import LEFT_SHIFT, _rescales
from toolchain.compiler.ops.base import activation, flat
from toolchain.compiler.ops.variants import Variant, register_variant

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
HALF = (1 << 30, 0)  # QuantizeMultiplier(0.5): the factor of the input with the larger scale


@dataclass(frozen=True)
class AddFold:
    """One ADD's operands and constants, `big` (factor exactly 1/2) first."""
    big: int  # index into op.inputs of input1 of the kernel
    offsets: tuple[int, int]  # -zero_point of (input1, input2) as the kernel sees them
    input2_multiplier: int
    input2_shift: int  # right shift, 0 when input2's factor is 1/2 as well
    output_multiplier: int
    output_shift: int  # right shift >= 1
    output_offset: int
    activation: tuple[int, int]


def srdhm(a: np.ndarray, b: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int64 arrays holding int32 values (b > 0: no saturation)."""
    return (a * b + (1 << 30)) >> 31


def rdbp(x: np.ndarray, e: int) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT (half away from zero)."""
    mask = (1 << e) - 1
    return (x >> e) + ((x & mask) > ((mask >> 1) + (x < 0))).astype(np.int64)


def reference(a: np.ndarray, b: np.ndarray, fold: AddFold, rescales) -> np.ndarray:
    """LiteRT's AddElementwise for int8 arrays a (input1) and b (input2)."""
    (m1, s1), (m2, s2), (mo, so) = rescales
    r1 = rdbp(srdhm((a + fold.offsets[0]) << LEFT_SHIFT, m1), -s1)
    r2 = rdbp(srdhm((b + fold.offsets[1]) << LEFT_SHIFT, m2), -s2)
    out = rdbp(srdhm(r1 + r2, mo), -so) + fold.output_offset
    return np.clip(out, *fold.activation)


def smmlar(a: np.ndarray, b: int, acc: int) -> np.ndarray:
    return ((acc << 32) + a * b + (1 << 31)) >> 32


def kernel_model(a: np.ndarray, b: np.ndarray, fold: AddFold) -> tuple[np.ndarray, bool]:
    """What tm_add_s8_dsp computes, and whether every intermediate stays in int32 (C would wrap otherwise)."""
    e2, eo = fold.input2_shift, fold.output_shift
    if e2 == 0:
        twice_sum = ((a + b) << 20) + ((fold.offsets[0] + fold.offsets[1]) << 20)
        parts = [twice_sum]
    else:
        x = (b << 21) + (fold.offsets[1] << 21)
        t = smmlar(x, fold.input2_multiplier, 1 << (e2 - 1))
        r2 = (t + (x >> 31)) >> e2
        twice_sum = (a << 20) + (fold.offsets[0] << 20) + 2 * r2
        parts = [x, t, r2, twice_sum]
    rounding = (1 << (eo - 1)) + (fold.output_offset << eo)
    y = smmlar(twice_sum, fold.output_multiplier, rounding)
    parts += [y, y + (twice_sum >> 31), np.array([rounding])]
    out = np.clip((y + (twice_sum >> 31)) >> eo, -128, 127)
    in_range = all(int(p.min()) >= INT32_MIN and int(p.max()) <= INT32_MAX for p in parts)
    return np.clip(out, *fold.activation), in_range


@dataclass(frozen=True)
class _Scale:
    scale: float


@lru_cache(maxsize=64)
def _fold(scales: tuple[float, float, float], zero_points: tuple[int, int, int], act: tuple[int, int]):
    (za, zb, zo) = zero_points
    rescales = [q.quantize_multiplier(r) for r in _rescales(*(_Scale(s) for s in scales))]
    if HALF not in rescales[:2]:
        return None  # never happens with TFLite's rescales: the larger input's factor is 1/2
    big = 0 if rescales[0] == HALF else 1
    rescales_kernel = [rescales[big], rescales[1 - big], rescales[2]]
    (m2, s2), (mo, s_out) = rescales_kernel[1], rescales_kernel[2]
    equal = rescales_kernel[1] == HALF
    if not (equal or -31 <= s2 <= -1) or not -31 <= s_out <= -1 or mo < (1 << 30):
        return None
    fold = AddFold(big=big, offsets=(-za, -zb) if big == 0 else (-zb, -za), input2_multiplier=m2,
                   input2_shift=0 if equal else -s2, output_multiplier=mo, output_shift=-s_out, output_offset=zo,
                   activation=act)
    grid = np.arange(-128, 128, dtype=np.int64)
    a, b = np.meshgrid(grid, grid, indexing="ij")
    got, in_range = kernel_model(a, b, fold)
    return fold if in_range and np.array_equal(got, reference(a, b, fold, rescales_kernel)) else None


def fold_add(op, g) -> AddFold | None:
    """The dsp kernel's constants for this ADD, or None when it must keep the portable kernel."""
    a, b, out = (g.tensors[t] for t in (*op.inputs[:2], op.outputs[0]))
    if not (a.shape == b.shape == out.shape):
        return None
    return _fold((a.scale, b.scale, out.scale), (a.zero_point, b.zero_point, out.zero_point),
                 tuple(activation(op, out)))


def kernel_params(fold: AddFold) -> dict:
    """tm_add_s8_dsp_params (dsp/tm_add_s8.h) of a fold, field by field."""
    equal = fold.input2_shift == 0
    e2, eo = fold.input2_shift, fold.output_shift
    return {
        "input1_offset": (fold.offsets[0] + (fold.offsets[1] if equal else 0)) << 20,
        "input2_offset": 0 if equal else fold.offsets[1] << 21,
        "input2_multiplier": 0 if equal else fold.input2_multiplier,
        "input2_rounding": 0 if equal else 1 << (e2 - 1),
        "input2_shift": e2,
        "output_multiplier": fold.output_multiplier,
        "output_rounding": (1 << (eo - 1)) + (fold.output_offset << eo),
        "output_shift": eo,
        "activation": {"min": fold.activation[0], "max": fold.activation[1]},
    }


def c_init(fields: dict) -> str:
    """A designated initialiser from (nested) fields."""
    return "{ " + ", ".join(f".{k} = {c_init(v) if isinstance(v, dict) else int(v)}" for k, v in fields.items()) + " }"


def kernel_operands(op, fold: AddFold) -> tuple[int, int]:
    """op.inputs indices of the kernel's (input1, input2)."""
    return (op.inputs[0], op.inputs[1]) if fold.big == 0 else (op.inputs[1], op.inputs[0])


@register_variant("ADD", "dsp")
class AddDsp(Variant):
    kernel = "tm_add_s8_dsp"

    def applies(self, op, g):
        return fold_add(op, g) is not None

    def kernel_for(self, op, g):
        return self.kernel

    def scratch_bytes(self, op, g):
        return 0  # tm_add_s8_dsp_get_buffer_size

    def emit(self, op, g, em):
        fold = fold_add(op, g)
        params = em.static("tm_add_s8_dsp_params", "add_dsp", c_init(kernel_params(fold)))
        in1, in2 = kernel_operands(op, fold)
        dims = em.dims_value(flat(g.tensors[op.outputs[0]]))
        return (f"{self.kernel}({em.context()}, &{params}, {dims}, {em.ptr(in1)}, {dims}, {em.ptr(in2)}, "
                f"{dims}, {em.ptr(op.outputs[0])})")
