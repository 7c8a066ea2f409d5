/*
 * ADD of same-shape int8 tensors, bit-exact with LiteRT's reference_integer_ops::AddElementwise.
 * Both inputs are brought to a common scale with left_shift bits of headroom before summing.
 */
#include "tm_support.h"

/* LiteRT's MultiplyByQuantizedMultiplierSmallerThanOneExp: shift <= 0, applied after the multiply. */
static inline int32_t scale_down(int32_t x, int32_t multiplier, int32_t shift)
{
    return tm_rounding_divide_by_pot(tm_saturating_rounding_doubling_high_mul(x, multiplier), -shift);
}

static int shift_down_ok(int32_t shift)
{
    return shift >= -31 && shift <= 0;
}

tm_status tm_add_s8(const tm_context *ctx, const tm_add_params *params,
                    const tm_dims *input1_dims, const int8_t *input1,
                    const tm_dims *input2_dims, const int8_t *input2,
                    const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (params == NULL || !tm_add_tensors_ok(input1_dims, input1, input2_dims, input2, output_dims, output) ||
        params->left_shift < 0 || params->left_shift > 31 || !shift_down_ok(params->input1_shift) ||
        !shift_down_ok(params->input2_shift) || !shift_down_ok(params->output_shift) ||
        !tm_activation_ok(&params->activation)) {
        return TM_ARG_ERROR;
    }

    /* Read once: the int8 stores may alias *params, which would force reloads per element. */
    const int32_t left_shift = params->left_shift;
    const int32_t input1_offset = params->input1_offset, input2_offset = params->input2_offset;
    const int32_t input1_multiplier = params->input1_multiplier, input1_shift = params->input1_shift;
    const int32_t input2_multiplier = params->input2_multiplier, input2_shift = params->input2_shift;
    const int32_t output_multiplier = params->output_multiplier, output_shift = params->output_shift;
    const int32_t output_offset = params->output_offset;
    const int32_t act_min = params->activation.min, act_max = params->activation.max;
    const int32_t size = tm_dims_size(output_dims);
    for (int32_t i = 0; i < size; ++i) {
        /* LiteRT shifts and sums in int32, which wraps; uint32 reproduces that without UB. */
        const int32_t s1 = (int32_t)((uint32_t)(input1_offset + input1[i]) << left_shift);
        const int32_t s2 = (int32_t)((uint32_t)(input2_offset + input2[i]) << left_shift);
        const int32_t r1 = scale_down(s1, input1_multiplier, input1_shift);
        const int32_t r2 = scale_down(s2, input2_multiplier, input2_shift);
        const int32_t scaled = scale_down(tm_wrapping_add(r1, r2), output_multiplier, output_shift);
        output[i] = (int8_t)tm_clamp(tm_wrapping_add(scaled, output_offset), act_min, act_max);
    }
    return TM_OK;
}

int32_t tm_add_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
