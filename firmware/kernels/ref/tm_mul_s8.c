/*
 * MUL of int8 tensors with broadcasting, bit-exact with LiteRT's reference_integer_ops::MulElementwise /
 * BroadcastMul6DSlow: the product of the offset inputs, requantized once.
 */
#include "tm_binary.h"

static inline int8_t mul_element(int32_t x1, int32_t x2, const void *params)
{
    const tm_mul_params *p = (const tm_mul_params *)params;
    const int32_t product = (p->input1_offset + x1) * (p->input2_offset + x2); /* |product| <= 2^16 */
    const int32_t scaled = tm_requantize(product, p->multiplier, p->shift);
    return (int8_t)tm_clamp(tm_wrapping_add(scaled, p->output_offset), p->activation.min, p->activation.max);
}

tm_status tm_mul_s8(const tm_context *ctx, const tm_mul_params *params, const tm_broadcast *broadcast,
                    const tm_dims *input1_dims, const int8_t *input1,
                    const tm_dims *input2_dims, const int8_t *input2,
                    const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (params == NULL || !tm_shift_ok(params->shift) || !tm_activation_ok(&params->activation) ||
        params->input1_offset < -127 || params->input1_offset > 128 || params->input2_offset < -127 ||
        params->input2_offset > 128 ||
        !tm_broadcast_args_ok(broadcast, input1_dims, input1, input2_dims, input2, output_dims, output)) {
        return TM_ARG_ERROR;
    }
    /* A copy: the int8 stores may alias *params, which would force reloads per element. */
    const tm_mul_params p = *params;
    tm_broadcast_walk(broadcast, output_dims, input1, input2, output, mul_element, &p);
    return TM_OK;
}

int32_t tm_mul_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
