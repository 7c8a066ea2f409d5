/*
 * QUANTIZE float32 -> int16 (an int16 model's float input), bit-exact with LiteRT's reference AffineQuantize:
 * round(x / scale) in float, half away from zero, clamped to int16.
 */
#include <math.h>

#include "tm_support.h"

tm_status tm_quantize_s16(const tm_context *ctx, const tm_quantize_f32_params *params,
                          const tm_dims *input_dims, const float *input,
                          const tm_dims *output_dims, int16_t *output)
{
    (void)ctx;
    if (!tm_same_shape_args_ok(params, input_dims, input, output_dims, output) || !(params->scale > 0.0f) ||
        params->zero_point != 0) {
        return TM_ARG_ERROR;
    }
    const float scale = params->scale;
    const int32_t size = tm_dims_size(input_dims);
    for (int32_t i = 0; i < size; ++i) {
        const float r = roundf(input[i] / scale);
        /* LiteRT converts the rounded quotient to int32, which x86 turns into INT32_MIN when it does not fit
         * (NaN included); the conversion itself would be undefined here, so that case is decided first. */
        const int32_t q = (r >= -2147483648.0f && r < 2147483648.0f) ? (int32_t)r : INT32_MIN;
        output[i] = (int16_t)tm_clamp(q, INT16_MIN, INT16_MAX);
    }
    return TM_OK;
}

int32_t tm_quantize_s16_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
