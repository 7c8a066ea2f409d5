"""Quantization arithmetic, computed once at compile time exactly as TFLite computes it."""
from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127


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


def activation_range(fused: str, scale: float, zero_point: int) -> tuple[int, int]:
    """TFLite CalculateActivationRangeQuantized for int8 outputs."""
    def q(v: float) -> int:  # TFLite divides in float32 here
        return zero_point + tflite_round(float(np.float32(v) / np.float32(scale)))

    if fused == "NONE":
        return INT8_MIN, INT8_MAX
    if fused == "RELU":
        return max(INT8_MIN, q(0.0)), INT8_MAX
    if fused == "RELU6":
        return max(INT8_MIN, q(0.0)), min(INT8_MAX, q(6.0))
    if fused == "RELU_N1_TO_1":
        return max(INT8_MIN, q(-1.0)), min(INT8_MAX, q(1.0))
    raise ValueError(f"unsupported fused activation {fused}")


def intersect(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return max(a[0], b[0]), min(a[1], b[1])


def quantize_array(x, scale: float, zero_point: int, dtype=np.int8):
    """Real values -> integers of `dtype`: round(x / scale) + zero_point, saturated (how float data is
    fed to an int8 model; numpy rounds half to even, as the TFLite Python API callers do)."""
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)

