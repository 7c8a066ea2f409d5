"""int8 unary activations as a 256-entry lookup table: LOGISTIC, TANH, ELU, HARD_SWISH, LEAKY_RELU.

An int8 unary op is a function of the input byte, so its 256 outputs are computed here, at compile time, with
LiteRT's own arithmetic, and the kernel `tm_lut_s8` only looks them up (`table[(uint8_t)x]`):

- LOGISTIC, TANH, ELU: LiteRT's int8 reference kernels are themselves a table, filled in Prepare by
  `LUTPopulate<int8_t>` (tflite/kernels/activations.cc, internal/common.h) in single precision:
  `q = clamp((int32)(roundf(f(s_in * (x - zp_in)) * (1 / s_out)) + zp_out))`, with f = 1/(1+expf(-v)), tanhf,
  v < 0 ? expm1f(v) : v. LiteRT calls the C library's expf/tanhf/expm1f, so the table does too (through ctypes).
- HARD_SWISH: reference_ops::HardSwish's int16 fixed point (hard_swish.h), its multipliers from HardSwishPrepare.
- LEAKY_RELU: reference_ops::QuantizeLeakyRelu, two (multiplier, shift): identity s_in/s_out and alpha
  s_in*alpha/s_out, both computed in float as LeakyReluPrepare does; a negative alpha's multiplier is applied as
  -(x * |multiplier|), as LiteRT 2.3 does (it differs from x * multiplier at exact rounding ties).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
from typing import Callable

import numpy as np

from toolchain.compiler import quant as q
from toolchain.compiler.ir import Graph, Op, Tensor
from toolchain.compiler.ops.base import (
    INT16_DTYPES, OpDef, check_same_shape, elementwise_dims, is_int16, register, require_int8, unary_call,
    wrap_int32,
)
from toolchain.compiler.ops.params import LutParams, LutS16Params, Symbol

INPUTS = np.arange(-128, 128)  # every int8 value; the table is indexed by (uint8_t)value


def f32(x) -> np.float32:
    return np.float32(x)


@functools.lru_cache(maxsize=None)
def _libm_function(name: str) -> Callable[[float], float]:
    """The C library's single-precision function (LiteRT's LUTPopulate calls it), numpy's as a fallback."""
    path = ctypes.util.find_library("m")
    if path is not None:
        fn = getattr(ctypes.CDLL(path), name)
        fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
        return lambda v: f32(fn(float(v)))
    fallback = {"expf": np.exp, "tanhf": np.tanh, "expm1f": np.expm1}[name]
    return lambda v: f32(fallback(f32(v)))


def _logistic(v: np.float32) -> np.float32:
    return f32(1.0) / (f32(1.0) + _libm_function("expf")(-v))


def _tanh(v: np.float32) -> np.float32:
    return _libm_function("tanhf")(v)


def _elu(v: np.float32) -> np.float32:
    return _libm_function("expm1f")(v) if v < 0 else v


FLOAT_FUNCTIONS = {"LOGISTIC": _logistic, "TANH": _tanh, "ELU": _elu}


def lut_populate(transform: Callable[[np.float32], np.float32], inp: Tensor, out: Tensor) -> np.ndarray:
    """LiteRT LUTPopulate<int8_t>: the outputs for INPUTS, in float32 as LiteRT computes them."""
    inverse_scale = f32(1.0) / f32(out.scale)
    values = []
    with np.errstate(over="ignore", invalid="ignore"):
        for x in INPUTS:
            transformed = transform(f32(inp.scale) * f32(int(x) - inp.zero_point))
            rescaled = transformed * inverse_scale
            quantized = (float(np.float32(q.tflite_round(float(rescaled))) + np.float32(out.zero_point))
                         if np.isfinite(rescaled) else float("nan"))
            # (int32_t) of a float beyond int32 (or NaN, inf) is undefined in C++; x86-64, where LiteRT runs here,
            # gives INT32_MIN. Only absurd scale ratios get there.
            values.append(int(quantized) if -2.0**31 <= quantized < 2.0**31 else -2**31)
    return np.clip(values, q.INT8_MIN, q.INT8_MAX).astype(np.int8)


# ---- gemmlowp / TFLite fixed point, on Python ints ------------------------------------------------
def _wrap(x: int, bits: int) -> int:
    half = 1 << (bits - 1)
    return (x + half) % (1 << bits) - half


def srdhm(a: int, b: int, bits: int = 32) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul for int32 or int16."""
    lo = -(1 << (bits - 1))
    if a == b == lo:
        return -lo - 1
    ab = a * b
    nudge = (1 << (bits - 2)) if ab >= 0 else 1 - (1 << (bits - 2))
    total = ab + nudge
    quotient = abs(total) >> (bits - 1)  # C division truncates toward zero
    return quotient if total >= 0 else -quotient


def rounding_divide_by_pot(x: int, exponent: int, bits: int = 32) -> int:
    """gemmlowp RoundingDivideByPOT (the mask is computed in the value's own width, as gemmlowp does)."""
    mask = _wrap((1 << exponent) - 1, bits)
    remainder = _wrap(x & mask, bits)
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """TFLite MultiplyByQuantizedMultiplier, double rounding (what tm_requantize computes)."""
    shifted = int(wrap_int32(x * (1 << max(shift, 0))))
    return rounding_divide_by_pot(srdhm(shifted, multiplier), max(-shift, 0))


def _saturating_left_shift16(value: int, amount: int) -> int:
    return min(max(value * (1 << amount), -32768), 32767)


def _saturating_doubling_high_mul16(a: int, b: int) -> int:
    if a == b == -32768:
        return 32767
    ab = a * b
    return abs(ab) >> 15 if ab >= 0 else -(abs(ab) >> 15)


def _down_scale_to_int16(multiplier: int) -> int:
    """TFLite DownScaleInt32ToInt16Multiplier."""
    if multiplier >= (1 << 31) - 1 - (1 << 15):
        return 32767
    return (multiplier + (1 << 15)) >> 16


def hard_swish_params(inp: Tensor, out: Tensor) -> dict[str, int]:
    """HardSwishPrepare (float arithmetic): the int16 multipliers and their exponents."""
    hires_input_scale = f32(1.0 / 128.0) * f32(inp.scale)
    output_multiplier, output_exponent = q.quantize_multiplier(float(hires_input_scale / f32(out.scale)))
    reluish_multiplier, reluish_exponent = q.quantize_multiplier(float(hires_input_scale / f32(3.0 / 32768.0)))
    return {"output_multiplier": _down_scale_to_int16(output_multiplier), "output_exponent": output_exponent,
            "reluish_multiplier": _down_scale_to_int16(reluish_multiplier), "reluish_exponent": reluish_exponent}


def hard_swish_table(inp: Tensor, out: Tensor) -> np.ndarray:
    """reference_ops::HardSwish (int8), value by value."""
    p = hard_swish_params(inp, out)
    values = []
    for x in INPUTS:
        hires = _wrap((int(x) - inp.zero_point) * 128, 16)
        preshift_output = srdhm(hires, p["output_multiplier"], 16)
        reluish = hires
        if p["reluish_exponent"] > 0:
            reluish = _saturating_left_shift16(reluish, p["reluish_exponent"] - 1)
        reluish = srdhm(reluish, p["reluish_multiplier"], 16)
        if p["reluish_exponent"] > 0:
            reluish = _saturating_left_shift16(reluish, 1)
        if p["reluish_exponent"] < 0:
            reluish = rounding_divide_by_pot(reluish, -p["reluish_exponent"], 16)
        reluish = _wrap((reluish + (1 << 15)) >> 1, 16)
        value = rounding_divide_by_pot(_saturating_doubling_high_mul16(reluish, preshift_output),
                                       -p["output_exponent"], 16)
        values.append(_wrap(value + out.zero_point, 16))
    return np.clip(values, q.INT8_MIN, q.INT8_MAX).astype(np.int8)


def leaky_relu_multipliers(inp: Tensor, out: Tensor, alpha: float) -> tuple[tuple[int, int], tuple[int, int]]:
    """LeakyReluPrepare: (identity, alpha) (multiplier, shift), the real factors computed in float."""
    identity = q.quantize_multiplier(float(f32(inp.scale) / f32(out.scale)))
    negative = q.quantize_multiplier(float(f32(inp.scale) * f32(alpha) / f32(out.scale)))
    return identity, negative


def leaky_relu_table(inp: Tensor, out: Tensor, alpha: float) -> np.ndarray:
    """reference_ops::QuantizeLeakyRelu, value by value."""
    identity, (alpha_multiplier, alpha_shift) = leaky_relu_multipliers(inp, out, alpha)
    sign = -1 if alpha_multiplier < 0 else 1  # a negative alpha: LiteRT scales by |multiplier|, then negates
    values = []
    for x in INPUTS:
        value = int(x) - inp.zero_point
        if value >= 0:
            values.append(out.zero_point + multiply_by_quantized_multiplier(value, *identity))
        else:
            values.append(out.zero_point + sign * multiply_by_quantized_multiplier(value, abs(alpha_multiplier),
                                                                                    alpha_shift))
    return np.clip(values, q.INT8_MIN, q.INT8_MAX).astype(np.int8)


def table(op: Op, g: Graph) -> np.ndarray:
    """The op's outputs for INPUTS = -128..127, in that order."""
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if op.kind in FLOAT_FUNCTIONS:
        return lut_populate(FLOAT_FUNCTIONS[op.kind], inp, out)
    if op.kind == "HARD_SWISH":
        return hard_swish_table(inp, out)
    if op.kind == "LEAKY_RELU":
        return leaky_relu_table(inp, out, op.options.get("alpha", 0.0))
    raise ValueError(f"no lookup table for {op.kind}")


def by_unsigned_index(values: np.ndarray) -> np.ndarray:
    """Outputs for -128..127 reordered so that entry (uint8_t)x holds x's output (the kernel's indexing)."""
    return np.roll(values, -128)


# ---- int16 LOGISTIC and TANH: LiteRT's reference_integer_ops::Logistic / Tanh for int16 ----------------------------
# Both read one table of sigmoid(i / 24) in 0.16 fixed point (tanh(x) = 2 sigmoid(2x) - 1), interpolating
# linearly, after rescaling the input so that 2^17 stands for 10.7 (3 * 4096 per unit, or a power-of-two shift).
SIGMOID_STEPS = 256
INPUT_INTEGER_BITS = 3


def sigmoid_table_u16() -> list[int]:
    """sigmoid(i / 24) * 2^16 for i in 0..255, each moved by half the linear interpolation's error at the midpoint
    to i + 1 (as TFLite's LUTPopulate does), rounded; the last entry is the format's maximum 65535. Equal to
    LiteRT's sigmoid_table_uint16, entry by entry (test_int16's LOGISTIC and TANH inputs reach every one)."""
    def f(x: float) -> float:
        return 65536.0 / (1.0 + math.exp(-x / 24.0))

    values = [min(65535, q.tflite_round(f(i) - ((f(i) + f(i + 1)) / 2 - f(i + 0.5)) / 2))
              for i in range(SIGMOID_STEPS - 1)]
    return values + [65535]


def s16_input_rescale(op: Op, g: Graph) -> tuple[int, int]:
    """LiteRT's SigmoidPrepare / TanhPrepare for int16: (input_multiplier, input_left_shift); multiplier 0 means
    the power-of-two case (the kernel multiplies by 3 << shift)."""
    scale = g.tensors[op.inputs[0]].scale
    pot, log2 = q.checked_log2(scale)
    shift = (15 - INPUT_INTEGER_BITS) + log2
    if pot and shift in ((0, 1) if op.kind == "TANH" else (0,)):
        return 0, shift
    multiplier, shift = q.f32(scale) * 4096.0 * 3.0, 0
    while multiplier <= 32767.0 / 2.0 and shift <= 30:
        shift += 1
        multiplier *= 2.0
    return int(multiplier), shift


def check_s16(op: Op, g: Graph) -> list[str]:
    """The int16 kernels' output format: scale 2^-15 (LOGISTIC exactly 1/32768, as LiteRT requires)."""
    out = g.tensors[op.outputs[0]]
    pot, log2 = q.checked_log2(out.scale)
    exact = op.kind != "LOGISTIC" or f32(out.scale) == f32(1.0 / 32768)
    if not (pot and log2 == -15 and exact):
        return [f"int16 {op.kind} output must have scale 2^-15 (got {out.scale}), as LiteRT requires"]
    multiplier, shift = s16_input_rescale(op, g)
    if multiplier * 32768 >= 2**31:
        return [f"int16 {op.kind} input scale {g.tensors[op.inputs[0]].scale:.3g} is too large for LiteRT's "
                "int16 kernel (its rescaled input would overflow int32)"]
    return []


class Lut(OpDef):
    """A unary int8 op compiled to `tm_lut_s8` and a 256-byte table in flash (identical tables are shared)."""

    kernel = "tm_lut_s8"

    def check(self, op, g):
        problems = require_int8(g, op, dtypes=INT16_DTYPES if self.kernel_s16 else ("int8",))
        if not problems and is_int16(op, g):
            problems += check_s16(op, g)
        return problems + check_same_shape(op, g)

    def kernel_dims(self, op, g):
        return elementwise_dims(op, g)

    def scratch_bytes(self, op, g):
        return 0  # tm_lut_s8_get_buffer_size (ref)

    def emit(self, op, g, em):
        if is_int16(op, g):
            table16 = em.weights("uint16_t", sigmoid_table_u16(), "sigmoid_table", "sigmoid(i / 24), 0.16 fixed point")
            multiplier, shift = s16_input_rescale(op, g)
            params = em.params(LutS16Params(sigmoid_table=Symbol(table16), input_multiplier=multiplier,
                                            input_left_shift=shift, tanh=int(op.kind == "TANH")))
            return unary_call(self.kernel_s16, em, params, op, self.kernel_dims(op, g), "int16_t", "int16_t")
        values = by_unsigned_index(table(op, g))
        lut = em.weights("int8_t", values, "lut", f"{op.kind} lookup table, indexed by (uint8_t)input")
        params = em.params(LutParams(table=Symbol(lut)))
        return unary_call(self.kernel, em, params, op, self.kernel_dims(op, g))


@register("TANH")
class Tanh(Lut):
    constraints = ("int8, any scales: LiteRT's float32 lookup table (tanhf), looked up; int16 (output scale 2^-15): "
                   "LiteRT's interpolated sigmoid table")
    kernel_s16 = "tm_lut_s16"


@register("ELU")
class Elu(Lut):
    constraints = ("int8, any scales: LiteRT's float32 lookup table (expm1f), looked up; LiteRT's BUILTIN_REF has "
                   "no ELU, so `tinyml check` cannot compare it")


@register("LOGISTIC")
class Logistic(Lut):
    constraints = ("int8, output scale 1/256 (as LiteRT requires): LiteRT's float32 lookup table, looked up; int16 "
                   "(output scale 2^-15): LiteRT's interpolated sigmoid table")
    kernel_s16 = "tm_lut_s16"

    def check(self, op, g):
        problems = super().check(op, g)
        out = g.tensors[op.outputs[0]]
        if not problems and not is_int16(op, g) and f32(out.scale) != f32(1.0 / 256):
            problems.append(f"int8 LOGISTIC output must have scale 1/256 (got {out.scale}), as LiteRT requires")
        return problems


@register("HARD_SWISH")
class HardSwish(Lut):
    constraints = "int8: LiteRT's int16 fixed point, tabulated at compile time"

    def check(self, op, g):
        problems = super().check(op, g)
        if not problems and hard_swish_params(g.tensors[op.inputs[0]], g.tensors[op.outputs[0]])["output_exponent"] > 0:
            problems.append("input scale / output scale is above 128: LiteRT's int8 HARD_SWISH refuses it")
        return problems


@register("LEAKY_RELU")
class LeakyRelu(Lut):
    constraints = "int8, any alpha: LiteRT's two requantizations (identity, alpha), tabulated at compile time"
