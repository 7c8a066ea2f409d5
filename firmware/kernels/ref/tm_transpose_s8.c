/*
 * TRANSPOSE (int8) with the permutation resolved (and padded to 4-D) by the compiler.
 */
#include "tm_support.h"

tm_status tm_transpose_s8(const tm_context *ctx, const tm_transpose_params *params,
                          const tm_dims *input_dims, const int8_t *input,
                          const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (params == NULL || input_dims == NULL || input == NULL || output_dims == NULL || output == NULL) {
        return TM_ARG_ERROR;
    }
    const int32_t in_size[4] = { input_dims->n, input_dims->h, input_dims->w, input_dims->c };
    const int32_t out_size[4] = { output_dims->n, output_dims->h, output_dims->w, output_dims->c };
    const int32_t perm[4] = { params->perm.n, params->perm.h, params->perm.w, params->perm.c };
    const int32_t in_stride[4] = { in_size[1] * in_size[2] * in_size[3], in_size[2] * in_size[3], in_size[3], 1 };
    int32_t step[4];
    int32_t seen = 0;
    for (int d = 0; d < 4; d++) {
        /* a permutation of 0..3 whose output extents are the input's: every read lies inside the input */
        if (perm[d] < 0 || perm[d] > 3 || (seen & (1 << perm[d])) || out_size[d] != in_size[perm[d]] ||
            out_size[d] <= 0) {
            return TM_ARG_ERROR;
        }
        seen |= 1 << perm[d];
        step[d] = in_stride[perm[d]];
    }
    for (int32_t a = 0; a < out_size[0]; a++) {
        for (int32_t b = 0; b < out_size[1]; b++) {
            for (int32_t c = 0; c < out_size[2]; c++) {
                const int8_t *src = input + a * step[0] + b * step[1] + c * step[2];
                for (int32_t d = 0; d < out_size[3]; d++) {
                    *output++ = src[d * step[3]];
                }
            }
        }
    }
    return TM_OK;
}

int32_t tm_transpose_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
