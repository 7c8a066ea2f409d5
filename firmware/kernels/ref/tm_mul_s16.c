/*
 * MUL int16 of same-shape inputs, bit-exact with LiteRT's reference_integer_ops::Mul for int16: symmetric
 * inputs, so the int32 product of two int16 values (at most 2^30) needs no offsets before the requantization.
 */
#include "tm_support.h"

tm_status tm_mul_s16(const tm_context *ctx, const tm_mul_params *params,
                     const tm_dims *input1_dims, const int16_t *input1,
                     const tm_dims *input2_dims, const int16_t *input2,
                     const tm_dims *output_dims, int16_t *output)
{
    (void)ctx;
    if (params == NULL || !tm_shift_ok(params->shift) || !tm_activation_s16_ok(&params->activation) ||
        params->input1_offset != 0 || params->input2_offset != 0 || params->output_offset != 0 || input1 == NULL ||
        input2 == NULL || output == NULL || !tm_dims_ok(input1_dims) || !tm_dims_ok(input2_dims) ||
        !tm_dims_ok(output_dims) || !tm_same_dims(input1_dims, output_dims) ||
        !tm_same_dims(input2_dims, output_dims)) {
        return TM_ARG_ERROR;
    }
    const tm_mul_params p = *params;
    const int32_t size = tm_dims_size(output_dims);
    for (int32_t i = 0; i < size; ++i) {
        const int32_t scaled = tm_requantize((int32_t)input1[i] * input2[i], p.multiplier, p.shift);
        output[i] = (int16_t)tm_clamp(scaled, p.activation.min, p.activation.max);
    }
    return TM_OK;
}

int32_t tm_mul_s16_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
