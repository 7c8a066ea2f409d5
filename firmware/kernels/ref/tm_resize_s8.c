/*
 * RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR (int8) from the compiler's per-row and per-column tables: which
 * input rows and columns each output position reads, and (bilinear) their weights in 1/1024, as LiteRT's
 * reference kernels compute them. The kernel only gathers and blends.
 */
#include <string.h>

#include "tm_support.h"

/* Every index an axis table holds lies inside the input, so no output position reads outside it. */
static int axis_ok(const tm_resize_axis *axis, int32_t count, int32_t extent, int32_t bilinear)
{
    if (axis->lower == NULL || (bilinear && (axis->upper == NULL || axis->weight == NULL))) {
        return 0;
    }
    for (int32_t i = 0; i < count; ++i) {
        if (axis->lower[i] < 0 || axis->lower[i] >= extent) {
            return 0;
        }
        if (bilinear && (axis->upper[i] < 0 || axis->upper[i] >= extent || axis->weight[i] < -1024 ||
                         axis->weight[i] > 1024)) {
            return 0;
        }
    }
    return 1;
}

/* LiteRT rounds half away from zero by adding +-2^19 and dividing (truncating) by 2^20. */
static inline int8_t blend(int32_t sum)
{
    return (int8_t)((sum > 0 ? sum + (1 << 19) : sum - (1 << 19)) / (1 << 20));
}

static void bilinear(const tm_resize_params *p, const tm_dims *in_dims, const int8_t *input,
                     const tm_dims *out_dims, int8_t *output)
{
    const int32_t depth = in_dims->c, row = in_dims->w * depth;
    for (int32_t b = 0; b < out_dims->n; ++b) {
        const int8_t *image = input + b * in_dims->h * row;
        for (int32_t y = 0; y < out_dims->h; ++y) {
            const int8_t *top = image + p->rows.lower[y] * row, *bottom = image + p->rows.upper[y] * row;
            const int32_t wy = p->rows.weight[y];
            for (int32_t x = 0; x < out_dims->w; ++x) {
                const int32_t left = p->cols.lower[x] * depth, right = p->cols.upper[x] * depth;
                const int32_t wx = p->cols.weight[x];
                /* With wy, wx in [-1024, 1024], |1024 - w| + |w| <= 3072 per axis and |input| <= 128: every
                 * sum stays below 128 * 3072^2 < 2^31, so int32 holds what LiteRT sums in int64. */
                const int32_t w00 = (1024 - wy) * (1024 - wx), w10 = wy * (1024 - wx);
                const int32_t w01 = (1024 - wy) * wx, w11 = wy * wx;
                for (int32_t ch = 0; ch < depth; ++ch) {
                    *output++ = blend(top[left + ch] * w00 + bottom[left + ch] * w10 + top[right + ch] * w01 +
                                      bottom[right + ch] * w11);
                }
            }
        }
    }
}

static void nearest(const tm_resize_params *p, const tm_dims *in_dims, const int8_t *input,
                    const tm_dims *out_dims, int8_t *output)
{
    const int32_t depth = in_dims->c, row = in_dims->w * depth;
    for (int32_t b = 0; b < out_dims->n; ++b) {
        const int8_t *image = input + b * in_dims->h * row;
        for (int32_t y = 0; y < out_dims->h; ++y) {
            const int8_t *src = image + p->rows.lower[y] * row;
            for (int32_t x = 0; x < out_dims->w; ++x) {
                memcpy(output, src + p->cols.lower[x] * depth, (size_t)depth);
                output += depth;
            }
        }
    }
}

tm_status tm_resize_s8(const tm_context *ctx, const tm_resize_params *params,
                       const tm_dims *input_dims, const int8_t *input,
                       const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (params == NULL || input == NULL || output == NULL || !tm_dims_ok(input_dims) || !tm_dims_ok(output_dims) ||
        output_dims->n != input_dims->n || output_dims->c != input_dims->c ||
        !axis_ok(&params->rows, output_dims->h, input_dims->h, params->bilinear) ||
        !axis_ok(&params->cols, output_dims->w, input_dims->w, params->bilinear)) {
        return TM_ARG_ERROR;
    }
    if (params->bilinear) {
        bilinear(params, input_dims, input, output_dims, output);
    } else {
        nearest(params, input_dims, input, output_dims, output);
    }
    return TM_OK;
}

int32_t tm_resize_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
