/*
 * The lookup-table activations with Helium: one contiguous load, one 16-lane gather from the 256-byte table and
 * one store per sixteen elements, the last partial vector predicated.
 */
#include "tm_nn.h"
#include "tm_support.h"
#include "tm_lut_s8.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>

tm_status tm_lut_s8_mve(const tm_context *ctx, const tm_lut_params *params,
                        const tm_dims *input_dims, const int8_t *input,
                        const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (!tm_same_shape_args_ok(params, input_dims, input, output_dims, output) || params->table == NULL) {
        return TM_ARG_ERROR;
    }
    const int8_t *table = params->table;
    const uint8_t *in = (const uint8_t *)input;
    int32_t size = tm_dims_size(input_dims);
    for (; size >= 16; size -= 16) {
        vstrbq_s8(output, vldrbq_gather_offset_s8(table, vldrbq_u8(in)));
        in += 16;
        output += 16;
    }
    if (size > 0) {
        const mve_pred16_t p = vctp8q((uint32_t)size);
        vstrbq_p_s8(output, vldrbq_gather_offset_z_s8(table, vldrbq_z_u8(in, p), p), p);
    }
    return TM_OK;
}

#endif /* __ARM_FEATURE_MVE */

int32_t tm_lut_s8_mve_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
