/*
 * CONCATENATION (int8) of inputs that share the output's quantization: a pure byte interleave.
 */
#include "tm_support.h"

#include <string.h>

tm_status tm_concatenation_s8(const tm_context *ctx, const tm_concatenation_params *params,
                              const int8_t *const *inputs,
                              const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (params == NULL || inputs == NULL || params->copy_size == NULL || output == NULL ||
        !tm_dims_ok(output_dims) || params->num_inputs < 1 || params->outer < 1) {
        return TM_ARG_ERROR;
    }
    int64_t total = 0;
    for (int32_t i = 0; i < params->num_inputs; ++i) {
        if (inputs[i] == NULL || params->copy_size[i] < 1) {
            return TM_ARG_ERROR;
        }
        total += params->copy_size[i];
    }
    if (total * params->outer != tm_dims_size(output_dims)) {
        return TM_ARG_ERROR;
    }

    int8_t *out = output;
    for (int32_t o = 0; o < params->outer; ++o) {
        for (int32_t i = 0; i < params->num_inputs; ++i) {
            const int32_t size = params->copy_size[i];
            memcpy(out, inputs[i] + o * size, (size_t)size);
            out += size;
        }
    }
    return TM_OK;
}

int32_t tm_concatenation_s8_get_buffer_size(const tm_dims *output_dims)
{
    (void)output_dims;
    return 0;
}
