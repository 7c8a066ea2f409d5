/*
 * AVERAGE_POOL_2D (int8) with Helium: 16 channels per step summed in int16 lanes, then LiteRT's rounded
 * division four lanes at a time by a reciprocal multiply (exactness argued in mve/tm_avg_pool2d_s8.h).
 */
#include "tm_nn.h"
#include "tm_support.h"
#include "tm_avg_pool2d_s8.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>

typedef struct {
    int32_t rows, cols;   /* in-bounds window */
    int32_t col_step;     /* bytes between horizontally adjacent inputs: the channel count */
    int32_t row_step;     /* bytes between vertically adjacent inputs */
    int32_t half;         /* count / 2 */
    uint32_t reciprocal;  /* ceil(2^31 / count) */
    int32x4_t act_min, act_max;
} window;

/* The averages of `channels` (<= 16) window sums, stored as int8. */
static void divide(const window *win, const int16_t *sums, int32_t channels, int8_t *out)
{
    const int32x4_t twice_half = vdupq_n_s32(2 * win->half);
    for (int32_t j = 0; j < channels; j += 4) {
        const int32x4_t s = vldrhq_s32(sums + j);
        /* 2 * (|s| + half): VMULH keeps the high word, so the doubling makes it a shift by 31 */
        const uint32x4_t n = vreinterpretq_u32_s32(vmlaq_n_s32(twice_half, vabsq_s32(s), 2));
        int32x4_t avg = vreinterpretq_s32_u32(vmulhq_u32(n, vdupq_n_u32(win->reciprocal)));
        avg = vnegq_m_s32(avg, avg, vcmpltq_n_s32(s, 0));
        avg = vminq_s32(vmaxq_s32(avg, win->act_min), win->act_max);
        vstrbq_p_s32(out + j, avg, vctp32q((uint32_t)(channels - j)));
    }
}

static void pool_channels(const window *win, const int8_t *in, int8_t *out, int32_t channels)
{
    int16_t sums[16];
    int32_t ch = 0;
    for (; ch + 16 <= channels; ch += 16) {
        int16x8_t lo = vdupq_n_s16(0), hi = vdupq_n_s16(0);
        const int8_t *row = in + ch;
        for (int32_t r = 0; r < win->rows; ++r) {
            const int8_t *p = row;
            for (int32_t k = 0; k < win->cols; ++k) {
                lo = vaddq_s16(lo, vldrbq_s16(p));
                hi = vaddq_s16(hi, vldrbq_s16(p + 8));
                p += win->col_step;
            }
            row += win->row_step;
        }
        vst1q_s16(sums, lo);
        vst1q_s16(sums + 8, hi);
        divide(win, sums, 16, out + ch);
    }
    if (ch < channels) {
        /* The last 1-15 channels: predicated loads never read past the pixel (nor the tensor). */
        const int32_t left = channels - ch;
        const mve_pred16_t p_lo = vctp16q((uint32_t)left), p_hi = vctp16q((uint32_t)(left > 8 ? left - 8 : 0));
        int16x8_t lo = vdupq_n_s16(0), hi = vdupq_n_s16(0);
        const int8_t *row = in + ch;
        for (int32_t r = 0; r < win->rows; ++r) {
            const int8_t *p = row;
            for (int32_t k = 0; k < win->cols; ++k) {
                lo = vaddq_s16(lo, vldrbq_z_s16(p, p_lo));
                hi = vaddq_s16(hi, vldrbq_z_s16(p + 8, p_hi));
                p += win->col_step;
            }
            row += win->row_step;
        }
        vst1q_s16(sums, lo);
        vst1q_s16(sums + 8, hi);
        divide(win, sums, left, out + ch);
    }
}

tm_status tm_avg_pool2d_s8_mve(const tm_context *ctx, const tm_avg_pool2d_params *params,
                               const tm_dims *input_dims, const int8_t *input,
                               const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (!tm_avg_pool2d_args_ok(params, input_dims, input, output_dims, output) ||
        params->filter.h * params->filter.w > TM_AVG_POOL2D_MVE_MAX_COUNT) {
        return TM_ARG_ERROR;
    }

    const int32_t h_in = input_dims->h, w_in = input_dims->w, c = input_dims->c;
    window win;
    win.col_step = c;
    win.row_step = w_in * c;
    win.act_min = vdupq_n_s32(params->activation.min);
    win.act_max = vdupq_n_s32(params->activation.max);
    for (int32_t b = 0; b < output_dims->n; ++b) {
        for (int32_t oy = 0; oy < output_dims->h; ++oy) {
            const int32_t y0 = oy * params->stride.h - params->padding.h;
            int32_t ky0, ky1;
            tm_pool2d_window(y0, params->filter.h, h_in, &ky0, &ky1);
            for (int32_t ox = 0; ox < output_dims->w; ++ox) {
                const int32_t x0 = ox * params->stride.w - params->padding.w;
                int32_t kx0, kx1;
                tm_pool2d_window(x0, params->filter.w, w_in, &kx0, &kx1);
                win.rows = ky1 - ky0;
                win.cols = kx1 - kx0;
                const uint32_t count = (uint32_t)(win.rows * win.cols);
                win.half = (int32_t)(count / 2);
                win.reciprocal = 0x7FFFFFFFu / count + 1u; /* ceil(2^31 / count) */
                const int8_t *in = input + ((b * h_in + y0 + ky0) * w_in + x0 + kx0) * c;
                pool_channels(&win, in, output + ((b * output_dims->h + oy) * output_dims->w + ox) * c, c);
            }
        }
    }
    return TM_OK;
}

#endif /* __ARM_FEATURE_MVE */

int32_t tm_avg_pool2d_s8_mve_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
