/*
 * MEAN over H and W (int8), bit-exact with LiteRT's reference kernel: the division by h * w is
 * folded into (multiplier, shift), so the sum is requantized in a single step.
 */
#include "tm_nn.h"

#include <stddef.h>

tm_status tm_mean_hw_s8(const tm_mean_params *params, const tm_dims *input_dims, const int8_t *input,
                        int8_t *output)
{
    if (params == NULL || input_dims == NULL || input == NULL || output == NULL ||
        input_dims->n < 1 || input_dims->h < 1 || input_dims->w < 1 || input_dims->c < 1 ||
        params->shift < -31 || params->shift > 30) {
        return TM_ARG_ERROR;
    }

    const int32_t hw = input_dims->h * input_dims->w;
    const int32_t c = input_dims->c;
    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int8_t *in = input + b * hw * c;
        for (int32_t ch = 0; ch < c; ++ch) {
            int64_t acc = (int64_t)params->input_offset * hw;
            for (int32_t i = 0; i < hw; ++i) {
                acc += in[i * c + ch];
            }
            /* LiteRT sums and offsets in int32, which wraps; uint32 reproduces that. */
            const int32_t scaled = tm_requantize((int32_t)(uint32_t)acc, params->multiplier, params->shift);
            int32_t v = (int32_t)((uint32_t)scaled + (uint32_t)params->output_offset);
            v = v < -128 ? -128 : (v > 127 ? 127 : v);
            output[b * c + ch] = (int8_t)v;
        }
    }
    return TM_OK;
}
