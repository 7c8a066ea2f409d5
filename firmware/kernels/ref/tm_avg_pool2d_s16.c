/*
 * AVERAGE_POOL_2D (int16), bit-exact with LiteRT's reference_integer_ops::AveragePool for int16: the int8
 * kernel's int32 sum and rounding over int16 values. Padded positions are excluded from the window.
 */
#include "tm_support.h"

tm_status tm_avg_pool2d_s16(const tm_context *ctx, const tm_avg_pool2d_params *params,
                            const tm_dims *input_dims, const int16_t *input,
                            const tm_dims *output_dims, int16_t *output)
{
    (void)ctx;
    if (!tm_pool2d_s16_args_ok(params, input_dims, input, output_dims, output) ||
        !tm_pool2d_windows_nonempty(params, input_dims, output_dims)) {
        return TM_ARG_ERROR;
    }
    const int32_t h_in = input_dims->h, w_in = input_dims->w, c = input_dims->c;
    int16_t *out = output;
    for (int32_t b = 0; b < output_dims->n; ++b) {
        for (int32_t oy = 0; oy < output_dims->h; ++oy) {
            const int32_t y0 = oy * params->stride.h - params->padding.h;
            int32_t ky0, ky1;
            tm_pool2d_window(y0, params->filter.h, h_in, &ky0, &ky1);
            for (int32_t ox = 0; ox < output_dims->w; ++ox) {
                const int32_t x0 = ox * params->stride.w - params->padding.w;
                int32_t kx0, kx1;
                tm_pool2d_window(x0, params->filter.w, w_in, &kx0, &kx1);
                const int32_t count = (ky1 - ky0) * (kx1 - kx0);
                for (int32_t ch = 0; ch < c; ++ch) {
                    int32_t sum = 0;
                    for (int32_t ky = ky0; ky < ky1; ++ky) {
                        for (int32_t kx = kx0; kx < kx1; ++kx) {
                            sum += input[((b * h_in + y0 + ky) * w_in + x0 + kx) * c + ch];
                        }
                    }
                    /* Integer division truncates, so bias by half the count away from zero. */
                    const int32_t avg = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
                    *out++ = (int16_t)tm_clamp(avg, params->activation.min, params->activation.max);
                }
            }
        }
    }
    return TM_OK;
}

int32_t tm_avg_pool2d_s16_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
