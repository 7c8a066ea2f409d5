/*
 * MEAN over H and W (int8), bit-exact with LiteRT's reference kernel: the division by h * w is
 * folded into (multiplier, shift), so the sum is requantized in a single step.
 */
#include "tm_support.h"

tm_status tm_mean_s8(const tm_context *ctx, const tm_mean_params *params,
                     const tm_dims *input_dims, const int8_t *input,
                     const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (!tm_mean_args_ok(params, input_dims, input, output_dims, output)) {
        return TM_ARG_ERROR;
    }

    const int32_t hw = input_dims->h * input_dims->w;
    const int32_t c = input_dims->c;
    /* Read once: the int8 stores may alias *params, which would force reloads per output. */
    const int32_t input_offset = params->input_offset, output_offset = params->output_offset;
    const int32_t multiplier = params->multiplier, shift = params->shift;
    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int8_t *in = input + b * hw * c;
        for (int32_t ch = 0; ch < c; ++ch) {
            int64_t acc = (int64_t)input_offset * hw;
            for (int32_t i = 0; i < hw; ++i) {
                acc += in[i * c + ch];
            }
            /* LiteRT sums in int32, which wraps; uint32 reproduces that. */
            const int32_t scaled = tm_requantize((int32_t)(uint32_t)acc, multiplier, shift);
            output[b * c + ch] = (int8_t)tm_clamp(tm_wrapping_add(scaled, output_offset), -128, 127);
        }
    }
    return TM_OK;
}

int32_t tm_mean_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
