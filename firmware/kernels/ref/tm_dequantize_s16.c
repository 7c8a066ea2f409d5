/*
 * DEQUANTIZE int16 -> float32 (an int16 model's float output), bit-exact with LiteRT's reference Dequantize.
 */
#include "tm_support.h"

tm_status tm_dequantize_s16(const tm_context *ctx, const tm_dequantize_params *params,
                            const tm_dims *input_dims, const int16_t *input,
                            const tm_dims *output_dims, float *output)
{
    (void)ctx;
    if (!tm_same_shape_args_ok(params, input_dims, input, output_dims, output) || !(params->scale > 0.0f) ||
        params->zero_point != 0) {
        return TM_ARG_ERROR;
    }
    /* LiteRT multiplies in double; a float times a 16-bit integer is exact there, so one float multiplication
     * rounds to the same value. */
    const float scale = params->scale;
    const int32_t size = tm_dims_size(input_dims);
    for (int32_t i = 0; i < size; ++i) {
        output[i] = scale * (float)input[i];
    }
    return TM_OK;
}

int32_t tm_dequantize_s16_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
