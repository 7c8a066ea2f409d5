/*
 * REDUCE_MAX / REDUCE_MIN over any axes (int8): input and output share their quantization, so the raw int8
 * extreme of each window is the answer, as LiteRT's reference ReduceGeneric gives it.
 */
#include "tm_support.h"

/* Inlined with a constant `minimum`, each kind gets its own loop without a per-element branch on it. */
static TM_ALWAYS_INLINE int32_t window_extreme(const tm_reduction *r, const int8_t *window, int minimum)
{
    int32_t best = window[0];
    for (int32_t i = 0; i < r->extent[0]; ++i) {
        for (int32_t j = 0; j < r->extent[1]; ++j) {
            for (int32_t k = 0; k < r->extent[2]; ++k) {
                const int8_t *p = window + i * r->stride[0] + j * r->stride[1] + k * r->stride[2];
                for (int32_t l = 0; l < r->extent[3]; ++l) {
                    const int32_t v = p[l * r->stride[3]];
                    best = minimum ? (v < best ? v : best) : (v > best ? v : best);
                }
            }
        }
    }
    return best;
}

static TM_ALWAYS_INLINE void reduce(const tm_reduction *r, const int8_t *input, int8_t *output, int minimum)
{
    for (int32_t a = 0; a < r->out[0]; ++a) {
        for (int32_t b = 0; b < r->out[1]; ++b) {
            for (int32_t c = 0; c < r->out[2]; ++c) {
                const int8_t *row = input + a * r->stride[0] + b * r->stride[1] + c * r->stride[2];
                for (int32_t d = 0; d < r->out[3]; ++d) {
                    *output++ = (int8_t)window_extreme(r, row + d * r->stride[3], minimum);
                }
            }
        }
    }
}

tm_status tm_reduce_s8(const tm_context *ctx, const tm_reduce_params *params,
                       const tm_dims *input_dims, const int8_t *input,
                       const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    tm_reduction r;
    if (params == NULL || input == NULL || output == NULL || !tm_reduction_init(&r, input_dims, output_dims) ||
        (params->kind != TM_REDUCE_MAX && params->kind != TM_REDUCE_MIN)) {
        return TM_ARG_ERROR;
    }
    if (params->kind == TM_REDUCE_MIN) {
        reduce(&r, input, output, 1);
    } else {
        reduce(&r, input, output, 0);
    }
    return TM_OK;
}

int32_t tm_reduce_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
