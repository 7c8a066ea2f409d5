/*
 * Fixed-point helpers with gemmlowp / TFLite semantics. Bit-exactness with LiteRT depends on
 * reproducing their rounding exactly, including the double rounding of tm_requantize().
 */
#include "tm_support.h"

int32_t tm_saturating_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    /* The only product whose doubled high half does not fit in int32. */
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    /* gemmlowp divides (truncating toward zero) rather than shifting (flooring). */
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

int32_t tm_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

int32_t tm_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    /* TFLite computes x * 2^left in int32 and lets it wrap; uint32 reproduces that without UB. */
    const int32_t shifted = (int32_t)((uint32_t)x << left);
    return tm_rounding_divide_by_pot(tm_saturating_rounding_doubling_high_mul(shifted, multiplier), right);
}

/* Bit-exact with LiteRT's reference Requantize (QUANTIZE between int8 scales) and its int8
 * RELU / RELU6, which differ only in the clamp. */
tm_status tm_requantize_elementwise_s8(const tm_requantize_params *params,
                                       const tm_dims *input_dims, const int8_t *input,
                                       const tm_dims *output_dims, int8_t *output)
{
    if (!tm_same_shape_args_ok(params, input_dims, input, output_dims, output) || !tm_shift_ok(params->shift) ||
        !tm_activation_ok(&params->activation)) {
        return TM_ARG_ERROR;
    }

    const int32_t size = tm_dims_size(input_dims);
    for (int32_t i = 0; i < size; ++i) {
        const int32_t scaled = tm_requantize(input[i] + params->input_offset, params->multiplier, params->shift);
        const int32_t v = tm_wrapping_add(scaled, params->output_offset);
        output[i] = (int8_t)tm_clamp(v, params->activation.min, params->activation.max);
    }
    return TM_OK;
}
