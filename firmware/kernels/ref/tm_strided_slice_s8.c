#include <stddef.h>

#include "tm_nn.h"

tm_status tm_strided_slice_s8(const tm_dims *input_dims, const int8_t *input, const tm_dims *begin,
                              const tm_dims *stride, const tm_dims *output_dims, int8_t *output)
{
    if (input_dims == NULL || input == NULL || begin == NULL || stride == NULL || output_dims == NULL ||
        output == NULL) {
        return TM_ARG_ERROR;
    }
    const tm_dims *in = input_dims, *out = output_dims;
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
