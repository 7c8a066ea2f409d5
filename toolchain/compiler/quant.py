"""Quantization arithmetic, computed once at compile time exactly as TFLite computes it."""
from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127
INT16_MIN, INT16_MAX = -32768, 32767
LIMITS = {"int8": (INT8_MIN, INT8_MAX), "int16": (INT16_MIN, INT16_MAX)}  # activation dtypes' ranges


def f32(x: float) -> float:
    """`x` rounded to float32, as TFLite stores scales, returned as a Python (double) float."""
    return float(np.float32(x))


def tflite_round(x: float) -> int:
    """std::round: half away from zero."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real = multiplier * 2^(shift - 31), multiplier in [2^30, 2^31)."""
    if real == 0.0:
        return 0, 0
    mantissa, shift = math.frexp(real)
    q = tflite_round(mantissa * (1 << 31))
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q, shift


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    multiplier, shift = quantize_multiplier(real)
    assert shift >= 0, real
    return multiplier, shift


def preprocess_softmax_scaling(beta: float, input_scale: float, input_integer_bits: int) -> tuple[int, int]:
    """TFLite PreprocessSoftmaxScaling (double-rounding build)."""
    max_real_multiplier = float((1 << 31) - 1)
    real = min(beta * input_scale * (1 << (31 - input_integer_bits)), max_real_multiplier)
    return quantize_multiplier_greater_than_one(real)


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1)
                          * (1 << (total_signed_bits - input_integer_bits)) / (1 << input_left_shift))
    return int(math.floor(max_input_rescaled))


def activation_range(fused: str, scale: float, zero_point: int,
                     limits: tuple[int, int] = (INT8_MIN, INT8_MAX)) -> tuple[int, int]:
    """TFLite CalculateActivationRangeQuantized for outputs of the type whose range is `limits` (int8 default)."""
    def q(v: float) -> int:  # TFLite divides in float32 here
        return zero_point + tflite_round(float(np.float32(v) / np.float32(scale)))

    lo, hi = limits
    if fused == "NONE":
        return lo, hi
    if fused == "RELU":
        return max(lo, q(0.0)), hi
    if fused == "RELU6":
        return max(lo, q(0.0)), min(hi, q(6.0))
    if fused == "RELU_N1_TO_1":
        return max(lo, q(-1.0)), min(hi, q(1.0))
    raise ValueError(f"unsupported fused activation {fused}")


def intersect(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return max(a[0], b[0]), min(a[1], b[1])


def quantize_array(x, scale: float, zero_point: int, dtype=np.int8):
    """Real values -> integers of `dtype`: round(x / scale) + zero_point, saturated (how float data is
    fed to an int8 model; numpy rounds half to even, as the TFLite Python API callers do)."""
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)



def lut_populate_int16(transform, input_scale: float, input_zero_point: int, output_scale: float,
                       output_zero_point: int) -> list[int]:
    """TFLite LUTPopulateInt16<double>: 513 int16 samples of `transform` over the int16 input range, each nudged
    by half the interpolation error at its midpoint (what LUTLookup's linear interpolation then reads)."""
    input_min = input_scale * (INT16_MIN - input_zero_point)
    input_max = input_scale * (INT16_MAX - input_zero_point)
    output_min = output_scale * (INT16_MIN - output_zero_point)
    output_max = output_scale * (INT16_MAX - output_zero_point)
    steps = 512
    step = (input_max - input_min) / steps
    half_step = step / 2
    scaling_inv = float(INT16_MAX - INT16_MIN + 1) / (output_max - output_min)

    def clamp(v: float) -> int:
        return int(min(max(v, float(INT16_MIN)), float(INT16_MAX)))

    lut = []
    for i in range(steps):
        val = transform(input_min + i * step)
        val_midpoint = transform(input_min + i * step + half_step)
        val_next = transform(input_min + (i + 1) * step)
        sample = tflite_round(val * scaling_inv)
        midpoint_interp = tflite_round((val_next * scaling_inv + sample) / 2)
        midpoint_err = midpoint_interp - tflite_round(val_midpoint * scaling_inv)
        lut.append(clamp(sample - tflite_round(midpoint_err / 2)))
    lut.append(clamp(tflite_round(transform(input_max) * scaling_inv)))
    return lut


def checked_log2(x: float) -> tuple[bool, int]:
    """TFLite CheckedLog2 (in float): whether `x` is a power of two within 1e-3 in log2, and that power."""
    log2 = np.float32(np.log(np.float32(x))) * (np.float32(1.0) / np.float32(np.log(np.float32(2.0))))
    rounded = tflite_round(float(log2))
    return abs(float(np.float32(log2 - np.float32(rounded)))) < 1e-3, rounded
