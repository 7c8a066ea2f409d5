/*
 * MAXIMUM of int8 tensors with broadcasting, bit-exact with LiteRT's reference_ops::MaximumMinimumBroadcastSlow:
 * the larger raw value (inputs and output share scale and zero point), clamped.
 */
#include "tm_binary.h"

static inline int8_t maximum_element(int32_t x1, int32_t x2, const void *params)
{
    const tm_maximum_params *p = (const tm_maximum_params *)params;
    return (int8_t)tm_clamp(x1 > x2 ? x1 : x2, p->activation.min, p->activation.max);
}

tm_status tm_maximum_s8(const tm_context *ctx, const tm_maximum_params *params, const tm_broadcast *broadcast,
                        const tm_dims *input1_dims, const int8_t *input1,
                        const tm_dims *input2_dims, const int8_t *input2,
                        const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (params == NULL || !tm_activation_ok(&params->activation) ||
        !tm_broadcast_args_ok(broadcast, input1_dims, input1, input2_dims, input2, output_dims, output)) {
        return TM_ARG_ERROR;
    }
    const tm_maximum_params p = *params;
    tm_broadcast_walk(broadcast, output_dims, input1, input2, output, maximum_element, &p);
    return TM_OK;
}

int32_t tm_maximum_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
