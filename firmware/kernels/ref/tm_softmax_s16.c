/*
 * SOFTMAX int16 -> int16, bit-exact with LiteRT's reference_ops::SoftmaxInt16: exp and the reciprocal of
 * the sum come from two interpolated 513-entry tables (built at compile time), the rest is fixed point.
 */
#include "tm_support.h"

/* Leading zeros of x > 0 (the sum of exps is at least exp(0)'s table value). */
static int32_t leading_zeros(uint32_t x)
{
    int32_t n = 0;
    for (uint32_t bit = UINT32_C(1) << 31; (x & bit) == 0u; bit >>= 1) {
        ++n;
    }
    return n;
}

static void softmax_row(const tm_softmax_s16_params *params, const int16_t *in, int16_t *out, int32_t depth)
{
    int32_t max_in_row = INT16_MIN;
    for (int32_t c = 0; c < depth; ++c) {
        max_in_row = in[c] > max_in_row ? in[c] : max_in_row;
    }
    /* The exps are kept in the output row until the reciprocal is known, as LiteRT does. */
    int32_t sum_of_exps = 0;
    for (int32_t c = 0; c < depth; ++c) {
        const int32_t scaled = tm_requantize(in[c] - max_in_row, params->input_multiplier, params->input_left_shift);
        out[c] = tm_lut_lookup_s16((int16_t)tm_clamp(scaled + 32767, INT16_MIN, INT16_MAX), params->exp_lut);
        sum_of_exps += out[c];
    }
    const int32_t headroom_plus_one = leading_zeros((uint32_t)sum_of_exps);
    const int32_t shifted_sum = (int32_t)((((int64_t)sum_of_exps << (headroom_plus_one - 1)) + (1 << 13)) >> 14);
    /* 1 / (1 + x) for x = sum - 1, recentred from [0, 65535] to the table's [-32768, 32767]. */
    const int32_t centred = tm_clamp(shifted_sum - ((1 << 15) + (1 << 16)), INT16_MIN, INT16_MAX);
    const int64_t reciprocal = tm_lut_lookup_s16((int16_t)centred, params->one_over_one_plus_x_lut);
    const int32_t right_shift = 31 - headroom_plus_one;
    const int64_t round = INT64_C(1) << (right_shift - 1);
    for (int32_t c = 0; c < depth; ++c) {
        const int32_t result = (int32_t)(((int64_t)out[c] * reciprocal + round) >> right_shift);
        out[c] = (int16_t)tm_clamp(result, 0, INT16_MAX);
    }
}

tm_status tm_softmax_s16(const tm_context *ctx, const tm_softmax_s16_params *params,
                         const tm_dims *input_dims, const int16_t *input,
                         const tm_dims *output_dims, int16_t *output)
{
    (void)ctx;
    /* depth <= 65536 keeps the sum of exps (each <= 32767) below 2^31. */
    if (!tm_same_shape_args_ok(params, input_dims, input, output_dims, output) || params->exp_lut == NULL ||
        params->one_over_one_plus_x_lut == NULL || !tm_shift_ok(params->input_left_shift) ||
        input_dims->c > 65536) {
        return TM_ARG_ERROR;
    }
    const int32_t rows = tm_dims_size(input_dims) / input_dims->c;
    for (int32_t r = 0; r < rows; ++r) {
        softmax_row(params, input + r * input_dims->c, output + r * input_dims->c, input_dims->c);
    }
    return TM_OK;
}

int32_t tm_softmax_s16_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
