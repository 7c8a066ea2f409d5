/*
 * STRIDED_SLICE (int8) with begin/stride already resolved by the compiler.
 */
#include "tm_support.h"

tm_status tm_strided_slice_s8(const tm_context *ctx, const tm_strided_slice_params *params,
                              const tm_dims *input_dims, const int8_t *input,
                              const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (params == NULL || input_dims == NULL || input == NULL || output_dims == NULL || output == NULL) {
        return TM_ARG_ERROR;
    }
    const tm_dims *in = input_dims, *out = output_dims, *begin = &params->begin, *stride = &params->stride;
    /* Every index read must lie inside the input: check both ends of each axis once. */
    const int32_t first[4] = { begin->n, begin->h, begin->w, begin->c };
    const int32_t step[4] = { stride->n, stride->h, stride->w, stride->c };
    const int32_t count[4] = { out->n, out->h, out->w, out->c };
    const int32_t limit[4] = { in->n, in->h, in->w, in->c };
    for (int d = 0; d < 4; d++) {
        int32_t last = first[d] + (count[d] - 1) * step[d];
        if (count[d] <= 0 || first[d] < 0 || first[d] >= limit[d] || last < 0 || last >= limit[d]) {
            return TM_ARG_ERROR;
        }
    }
    for (int32_t n = 0; n < out->n; n++) {
        for (int32_t h = 0; h < out->h; h++) {
            for (int32_t w = 0; w < out->w; w++) {
                const int32_t row = ((first[0] + n * step[0]) * in->h + first[1] + h * step[1]) * in->w +
                                    first[2] + w * step[2];
                const int8_t *src = input + row * in->c + first[3];
                for (int32_t c = 0; c < out->c; c++) {
                    *output++ = src[c * step[3]];
                }
            }
        }
    }
    return TM_OK;
}

int32_t tm_strided_slice_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
