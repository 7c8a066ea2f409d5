/*
 * The element-wise requantization shared by QUANTIZE (int8 -> int8) and the standalone ReLUs; the
 * fixed-point helpers themselves are static inline in tm_support.h.
 */
#include "tm_support.h"

/* Bit-exact with LiteRT's reference Requantize (QUANTIZE between int8 scales) and its int8
 * RELU / RELU6, which differ only in the clamp. */
tm_status tm_requantize_elementwise_s8(const tm_requantize_params *params,
                                       const tm_dims *input_dims, const int8_t *input,
                                       const tm_dims *output_dims, int8_t *output)
{
    if (!tm_same_shape_args_ok(params, input_dims, input, output_dims, output) || !tm_shift_ok(params->shift) ||
        !tm_activation_ok(&params->activation)) {
        return TM_ARG_ERROR;
    }

    /* Read once: the int8 stores may alias *params, which would force a reload per element. */
    const int32_t input_offset = params->input_offset, output_offset = params->output_offset;
    const int32_t multiplier = params->multiplier, shift = params->shift;
    const int32_t act_min = params->activation.min, act_max = params->activation.max;
    const int32_t size = tm_dims_size(input_dims);
    for (int32_t i = 0; i < size; ++i) {
        const int32_t scaled = tm_requantize(input[i] + input_offset, multiplier, shift);
        output[i] = (int8_t)tm_clamp(tm_wrapping_add(scaled, output_offset), act_min, act_max);
    }
    return TM_OK;
}
