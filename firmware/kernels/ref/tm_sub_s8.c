/*
 * SUB of int8 tensors with broadcasting, bit-exact with LiteRT's reference_ops::SubElementwise /
 * BroadcastQuantSubSlow: ADD's arithmetic (left shift 20, both inputs to twice the larger scale) with the
 * difference in place of the sum.
 */
#include "tm_binary.h"

static inline int8_t sub_element(int32_t x1, int32_t x2, const void *params)
{
    const tm_sub_params *p = (const tm_sub_params *)params;
    const int32_t s1 = (int32_t)((uint32_t)(p->input1_offset + x1) << p->left_shift);
    const int32_t s2 = (int32_t)((uint32_t)(p->input2_offset + x2) << p->left_shift);
    const int32_t r1 = tm_scale_down(s1, p->input1_multiplier, p->input1_shift);
    const int32_t r2 = tm_scale_down(s2, p->input2_multiplier, p->input2_shift);
    const int32_t raw = (int32_t)((uint32_t)r1 - (uint32_t)r2);
    const int32_t scaled = tm_scale_down(raw, p->output_multiplier, p->output_shift);
    return (int8_t)tm_clamp(tm_wrapping_add(scaled, p->output_offset), p->activation.min, p->activation.max);
}

tm_status tm_sub_s8(const tm_context *ctx, const tm_sub_params *params, const tm_broadcast *broadcast,
                    const tm_dims *input1_dims, const int8_t *input1,
                    const tm_dims *input2_dims, const int8_t *input2,
                    const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (!tm_arithmetic_ok(params) ||
        !tm_broadcast_args_ok(broadcast, input1_dims, input1, input2_dims, input2, output_dims, output)) {
        return TM_ARG_ERROR;
    }
    /* A copy: the int8 stores may alias *params, which would force reloads per element. */
    const tm_sub_params p = *params;
    tm_broadcast_walk(broadcast, output_dims, input1, input2, output, sub_element, &p);
    return TM_OK;
}

int32_t tm_sub_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
