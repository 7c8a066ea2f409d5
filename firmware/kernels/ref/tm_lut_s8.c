/*
 * LOGISTIC, TANH, ELU, HARD_SWISH, LEAKY_RELU (int8): one byte lookup per element. The compiler fills the
 * 256-entry table with LiteRT's reference arithmetic (toolchain/compiler/ops/lut.py), so the kernel is
 * bit-exact by construction. Element i is read before it is written: it may run in place.
 */
#include "tm_support.h"

tm_status tm_lut_s8(const tm_context *ctx, const tm_lut_params *params,
                    const tm_dims *input_dims, const int8_t *input,
                    const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (!tm_same_shape_args_ok(params, input_dims, input, output_dims, output) || params->table == NULL) {
        return TM_ARG_ERROR;
    }
    const int8_t *table = params->table;
    const int32_t size = tm_dims_size(input_dims);
    for (int32_t i = 0; i < size; ++i) {
        output[i] = table[(uint8_t)input[i]];
    }
    return TM_OK;
}

int32_t tm_lut_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
