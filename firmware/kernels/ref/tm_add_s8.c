/*
 * ADD of same-shape int8 tensors, bit-exact with LiteRT's reference_integer_ops::AddElementwise.
 * Both inputs are brought to a common scale with left_shift bits of headroom before summing.
 */
#include "tm_nn.h"

#include <stddef.h>

/* LiteRT's MultiplyByQuantizedMultiplierSmallerThanOneExp: shift <= 0, applied after the multiply. */
static int32_t scale_down(int32_t x, int32_t multiplier, int32_t shift)
{
    return tm_rounding_divide_by_pot(tm_saturating_rounding_doubling_high_mul(x, multiplier), -shift);
}

static int shift_ok(int32_t shift)
{
    return shift >= -31 && shift <= 0;
}

tm_status tm_add_s8(const tm_add_params *params, const int8_t *input1, const int8_t *input2,
                    int8_t *output, int32_t size)
{
    if (params == NULL || input1 == NULL || input2 == NULL || output == NULL || size < 1 ||
        params->left_shift < 0 || params->left_shift > 31 || !shift_ok(params->input1_shift) ||
        !shift_ok(params->input2_shift) || !shift_ok(params->output_shift) ||
        params->activation.min < -128 || params->activation.min > params->activation.max ||
        params->activation.max > 127) {
        return TM_ARG_ERROR;
    }

    for (int32_t i = 0; i < size; ++i) {
        const int32_t v1 = params->input1_offset + input1[i];
        const int32_t v2 = params->input2_offset + input2[i];
        /* LiteRT shifts and sums in int32, which wraps; uint32 reproduces that without UB. */
        const int32_t s1 = (int32_t)((uint32_t)v1 << params->left_shift);
        const int32_t s2 = (int32_t)((uint32_t)v2 << params->left_shift);
        const int32_t r1 = scale_down(s1, params->input1_multiplier, params->input1_shift);
        const int32_t r2 = scale_down(s2, params->input2_multiplier, params->input2_shift);
        const int32_t raw = (int32_t)((uint32_t)r1 + (uint32_t)r2);
        const int32_t scaled = scale_down(raw, params->output_multiplier, params->output_shift);
        int32_t v = (int32_t)((uint32_t)scaled + (uint32_t)params->output_offset);
        v = v < params->activation.min ? params->activation.min : v;
        v = v > params->activation.max ? params->activation.max : v;
        output[i] = (int8_t)v;
    }
    return TM_OK;
}
