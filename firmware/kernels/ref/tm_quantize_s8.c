/*
 * QUANTIZE (int8 output), bit-exact with LiteRT's reference kernels:
 * - tm_quantize_s8: int8 -> int8 between scales (reference Requantize);
 * - tm_quantize_s8_from_f32: float -> int8 at the model's input (AffineQuantize: single-precision
 *   division and roundf).
 */
#include "tm_support.h"

#include <math.h>

tm_status tm_quantize_s8(const tm_context *ctx, const tm_quantize_params *params,
                         const tm_dims *input_dims, const int8_t *input,
                         const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    return tm_requantize_elementwise_s8(params, input_dims, input, output_dims, output);
}

int32_t tm_quantize_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}

tm_status tm_quantize_s8_from_f32(const tm_context *ctx, const tm_quantize_f32_params *params,
                                  const tm_dims *input_dims, const float *input,
                                  const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (!tm_same_shape_args_ok(params, input_dims, input, output_dims, output) || !tm_affine_ok(params)) {
        return TM_ARG_ERROR;
    }

    const float scale = params->scale;
    const int32_t size = tm_dims_size(input_dims);
    for (int32_t i = 0; i < size; ++i) {
        const float r = roundf(input[i] / scale);
        /* Anything beyond [-256, 256] clamps the same way, and converting it to int would be UB for
         * huge values or NaN, which lands on -128 here. */
        const int32_t q = !(r >= -256.0f) ? -256 : (r > 256.0f ? 256 : (int32_t)r);
        output[i] = (int8_t)tm_clamp(q + params->zero_point, -128, 127);
    }
    return TM_OK;
}

int32_t tm_quantize_s8_from_f32_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
