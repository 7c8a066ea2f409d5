/*
 * ADD of int8 tensors, bit-exact with LiteRT's reference_integer_ops::AddElementwise (same shapes) and
 * BroadcastAdd6DSlow (broadcasting). Both inputs are brought to a common scale with left_shift bits of headroom
 * before summing.
 */
#include "tm_binary.h"

static inline int8_t add_element(int32_t x1, int32_t x2, const void *params)
{
    const tm_add_params *p = (const tm_add_params *)params;
    return (int8_t)tm_clamp(tm_add_unclamped(x1, x2, p), p->activation.min, p->activation.max);
}

tm_status tm_add_s8(const tm_context *ctx, const tm_add_params *params,
                    const tm_dims *input1_dims, const int8_t *input1,
                    const tm_dims *input2_dims, const int8_t *input2,
                    const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (!tm_arithmetic_ok(params) ||
        !tm_add_tensors_ok(input1_dims, input1, input2_dims, input2, output_dims, output)) {
        return TM_ARG_ERROR;
    }
    /* A copy: the int8 stores may alias *params, which would force reloads per element. */
    const tm_add_params p = *params;
    const int32_t size = tm_dims_size(output_dims);
    for (int32_t i = 0; i < size; ++i) {
        output[i] = add_element(input1[i], input2[i], &p);
    }
    return TM_OK;
}

int32_t tm_add_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}

tm_status tm_add_s8_broadcast(const tm_context *ctx, const tm_add_params *params, const tm_broadcast *broadcast,
                              const tm_dims *input1_dims, const int8_t *input1,
                              const tm_dims *input2_dims, const int8_t *input2,
                              const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (!tm_arithmetic_ok(params) ||
        !tm_broadcast_args_ok(broadcast, input1_dims, input1, input2_dims, input2, output_dims, output)) {
        return TM_ARG_ERROR;
    }
    const tm_add_params p = *params;
    tm_broadcast_walk(broadcast, output_dims, input1, input2, output, add_element, &p);
    return TM_OK;
}

int32_t tm_add_s8_broadcast_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
