/*
 * A standalone RELU / RELU6 / RELU_N1_TO_1 (int8), bit-exact with LiteRT's QuantizedReluX:
 * a requantization to the output's scale, clamped to the activation's range.
 */
#include "tm_support.h"

tm_status tm_relu_s8(const tm_context *ctx, const tm_relu_params *params,
                     const tm_dims *input_dims, const int8_t *input,
                     const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    return tm_requantize_elementwise_s8(params, input_dims, input, output_dims, output);
}

int32_t tm_relu_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
