/*
 * PRELU (int8), bit-exact with LiteRT's reference Prelu / BroadcastPrelu4DSlow: the non-negative side
 * requantized by s_in / s_out, the negative side multiplied by its alpha and requantized by
 * s_in * s_alpha / s_out. Alpha repeats along the flattened tensor (per-channel alpha of NHWC data).
 * Element i is read before it is written: it may run in place.
 */
#include "tm_support.h"

tm_status tm_prelu_s8(const tm_context *ctx, const tm_prelu_params *params,
                      const tm_dims *input_dims, const int8_t *input,
                      const tm_dims *alpha_dims, const int8_t *alpha,
                      const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (!tm_same_shape_args_ok(params, input_dims, input, output_dims, output) || alpha == NULL ||
        !tm_dims_ok(alpha_dims) || !tm_shift_ok(params->positive_shift) || !tm_shift_ok(params->negative_shift)) {
        return TM_ARG_ERROR;
    }
    const int32_t size = tm_dims_size(input_dims);
    const int32_t alpha_size = tm_dims_size(alpha_dims);
    if (size % alpha_size != 0) {
        return TM_ARG_ERROR;
    }
    for (int32_t start = 0; start < size; start += alpha_size) {
        const int8_t *in = input + start;
        int8_t *out = output + start;
        for (int32_t k = 0; k < alpha_size; ++k) {
            const int32_t x = in[k] + params->input_offset;
            int32_t y;
            if (x >= 0) {
                y = tm_requantize(x, params->positive_multiplier, params->positive_shift);
            } else {
                y = tm_requantize(x * (alpha[k] + params->alpha_offset), params->negative_multiplier,
                                  params->negative_shift);
            }
            out[k] = (int8_t)tm_clamp(tm_wrapping_add(y, params->output_offset), -128, 127);
        }
    }
    return TM_OK;
}

int32_t tm_prelu_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *alpha_dims,
                                    const tm_dims *output_dims)
{
    (void)input_dims;
    (void)alpha_dims;
    (void)output_dims;
    return 0;
}
