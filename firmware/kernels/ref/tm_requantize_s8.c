/*
 * Element-wise int8 -> int8 rescaling, bit-exact with LiteRT's reference Requantize (QUANTIZE
 * between int8 scales) and its int8 RELU / RELU6, which differ only in the clamp.
 */
#include "tm_nn.h"

#include <stddef.h>

tm_status tm_requantize_s8(const tm_requantize_params *params, const int8_t *input, int8_t *output,
                           int32_t size)
{
    if (params == NULL || input == NULL || output == NULL || size < 1 ||
        params->shift < -31 || params->shift > 30 ||
        params->activation.min < -128 || params->activation.min > params->activation.max ||
        params->activation.max > 127) {
        return TM_ARG_ERROR;
    }

    for (int32_t i = 0; i < size; ++i) {
        const int32_t scaled = tm_requantize(input[i] + params->input_offset, params->multiplier, params->shift);
        /* LiteRT adds the offset in int32, which wraps; uint32 reproduces that. */
        int32_t v = (int32_t)((uint32_t)scaled + (uint32_t)params->output_offset);
        v = v < params->activation.min ? params->activation.min : v;
        v = v > params->activation.max ? params->activation.max : v;
        output[i] = (int8_t)v;
    }
    return TM_OK;
}
