/*
 * SPLIT, SPLIT_V and UNPACK (int8) of an input whose outputs share its quantization: a pure byte
 * de-interleave, the inverse of tm_concatenation_s8.
 */
#include "tm_support.h"

#include <string.h>

tm_status tm_split_s8(const tm_context *ctx, const tm_split_params *params,
                      const tm_dims *input_dims, const int8_t *input,
                      int8_t *const *outputs)
{
    (void)ctx;
    if (params == NULL || outputs == NULL || params->copy_size == NULL || input == NULL ||
        !tm_dims_ok(input_dims) || params->num_outputs < 1 || params->outer < 1) {
        return TM_ARG_ERROR;
    }
    int64_t total = 0;
    for (int32_t i = 0; i < params->num_outputs; ++i) {
        if (outputs[i] == NULL || params->copy_size[i] < 1) {
            return TM_ARG_ERROR;
        }
        total += params->copy_size[i];
    }
    if (total * params->outer != tm_dims_size(input_dims)) {
        return TM_ARG_ERROR;
    }

    const int8_t *in = input;
    for (int32_t o = 0; o < params->outer; ++o) {
        for (int32_t i = 0; i < params->num_outputs; ++i) {
            const int32_t size = params->copy_size[i];
            memcpy(outputs[i] + o * size, in, (size_t)size);
            in += size;
        }
    }
    return TM_OK;
}

int32_t tm_split_s8_get_buffer_size(const tm_dims *input_dims)
{
    (void)input_dims;
    return 0;
}
