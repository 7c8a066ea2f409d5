/*
 * DEQUANTIZE int8 -> float at the model's output, bit-exact with LiteRT's reference Dequantize.
 */
#include "tm_support.h"

tm_status tm_dequantize_s8(const tm_context *ctx, const tm_dequantize_params *params,
                           const tm_dims *input_dims, const int8_t *input,
                           const tm_dims *output_dims, float *output)
{
    (void)ctx;
    if (!tm_same_shape_args_ok(params, input_dims, input, output_dims, output) || !tm_affine_ok(params)) {
        return TM_ARG_ERROR;
    }

    /* LiteRT multiplies in double; the product of a float and a 9-bit integer is exact there,
     * so one float multiplication rounds to the same value. */
    const float scale = params->scale;
    const int32_t size = tm_dims_size(input_dims);
    for (int32_t i = 0; i < size; ++i) {
        output[i] = scale * (float)(input[i] - params->zero_point);
    }
    return TM_OK;
}

int32_t tm_dequantize_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
