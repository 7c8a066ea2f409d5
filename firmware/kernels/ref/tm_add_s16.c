/*
 * ADD int16 of same-shape inputs, bit-exact with LiteRT's reference general-scale int16 ADD
 * (AddGeneralParamScale): the int8 arithmetic with 15 bits of headroom.
 */
#include "tm_binary.h"

tm_status tm_add_s16(const tm_context *ctx, const tm_add_params *params,
                     const tm_dims *input1_dims, const int16_t *input1,
                     const tm_dims *input2_dims, const int16_t *input2,
                     const tm_dims *output_dims, int16_t *output)
{
    (void)ctx;
    if (params == NULL || params->left_shift < 0 || params->left_shift > 31 ||
        !tm_shift_down_ok(params->input1_shift) || !tm_shift_down_ok(params->input2_shift) ||
        !tm_shift_down_ok(params->output_shift) || !tm_activation_s16_ok(&params->activation) ||
        input1 == NULL || input2 == NULL || output == NULL || !tm_dims_ok(input1_dims) || !tm_dims_ok(input2_dims) ||
        !tm_dims_ok(output_dims) || !tm_same_dims(input1_dims, output_dims) ||
        !tm_same_dims(input2_dims, output_dims)) {
        return TM_ARG_ERROR;
    }
    const tm_add_params p = *params;
    const int32_t size = tm_dims_size(output_dims);
    for (int32_t i = 0; i < size; ++i) {
        output[i] = (int16_t)tm_clamp(tm_add_unclamped(input1[i], input2[i], &p), p.activation.min, p.activation.max);
    }
    return TM_OK;
}

int32_t tm_add_s16_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
