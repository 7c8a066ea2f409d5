/*
 * CONCATENATION (int8) of inputs that share the output's quantization: a pure byte interleave.
 */
#include "tm_nn.h"

#include <stddef.h>
#include <string.h>

tm_status tm_concat_s8(const int8_t *const *inputs, const int32_t *copy_size, int32_t num_inputs,
                       int32_t outer, int8_t *output)
{
    if (inputs == NULL || copy_size == NULL || output == NULL || num_inputs < 1 || outer < 1) {
        return TM_ARG_ERROR;
    }
    for (int32_t i = 0; i < num_inputs; ++i) {
        if (inputs[i] == NULL || copy_size[i] < 1) {
            return TM_ARG_ERROR;
        }
    }

    int8_t *out = output;
    for (int32_t o = 0; o < outer; ++o) {
        for (int32_t i = 0; i < num_inputs; ++i) {
            memcpy(out, inputs[i] + o * copy_size[i], (size_t)copy_size[i]);
            out += copy_size[i];
        }
    }
    return TM_OK;
}
