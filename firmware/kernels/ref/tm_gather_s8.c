/*
 * GATHER (int8) along one axis with indices the compiler resolved: whole inner rows are copied.
 */
#include "tm_support.h"

#include <string.h>

tm_status tm_gather_s8(const tm_context *ctx, const tm_gather_params *params,
                       const tm_dims *input_dims, const int8_t *input,
                       const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (params == NULL || params->indices == NULL || input == NULL || output == NULL ||
        !tm_dims_ok(input_dims) || !tm_dims_ok(output_dims) || params->num_indices < 1 || params->outer < 1 ||
        params->axis_size < 1 || params->inner < 1) {
        return TM_ARG_ERROR;
    }
    const int64_t rows = (int64_t)params->outer * params->inner;
    if (rows * params->axis_size != tm_dims_size(input_dims) ||
        rows * params->num_indices != tm_dims_size(output_dims)) {
        return TM_ARG_ERROR;
    }
    for (int32_t k = 0; k < params->num_indices; ++k) {
        if (params->indices[k] < 0 || params->indices[k] >= params->axis_size) {
            return TM_ARG_ERROR;
        }
    }

    const size_t inner = (size_t)params->inner;
    int8_t *out = output;
    for (int32_t o = 0; o < params->outer; ++o) {
        const int8_t *block = input + (size_t)o * (size_t)params->axis_size * inner;
        for (int32_t k = 0; k < params->num_indices; ++k) {
            memcpy(out, block + (size_t)params->indices[k] * inner, inner);
            out += inner;
        }
    }
    return TM_OK;
}

int32_t tm_gather_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
