/*
 * AVERAGE_POOL_2D (int8) for cores with the DSP extension: the window sums of 4 or 8 channels at a time in
 * int16 lanes (one LDR and two SXTAB16 per 4 inputs), then LiteRT's rounded division per channel.
 */
#include "tm_nn.h"
#include "tm_simd.h"
#include "tm_support.h"
#include "tm_avg_pool2d_s8.h"

/* LiteRT: sum / count rounded half away from zero (C division truncates, so bias by half the count). */
static inline int8_t average(int32_t sum, int32_t count, int32_t half, int32_t act_min, int32_t act_max)
{
    const int32_t sign = sum >> 31;
    const int32_t avg = (sum + ((half ^ sign) - sign)) / count;
    return (int8_t)tm_clamp(avg, act_min, act_max);
}

typedef struct {
    int32_t rows, cols;     /* in-bounds window */
    int32_t col_step;       /* bytes between horizontally adjacent inputs: the channel count */
    int32_t row_step;       /* bytes between vertically adjacent inputs */
    int32_t count, half;    /* rows * cols, count / 2 */
    int32_t act_min, act_max;
} window;

static void pool_channels(const window *win, const int8_t *in, int8_t *out, int32_t channels)
{
    int32_t ch = 0;
    for (; ch + 8 <= channels; ch += 8) {
        /* Lanes: even0 = channels 0, 2; odd0 = 1, 3; even1 = 4, 6; odd1 = 5, 7. */
        uint32_t even0 = 0, odd0 = 0, even1 = 0, odd1 = 0;
        const int8_t *row = in + ch;
        for (int32_t r = 0; r < win->rows; ++r) {
            const int8_t *p = row;
            for (int32_t k = 0; k < win->cols; ++k) {
                const uint32_t w0 = tm_load_u32(p), w1 = tm_load_u32(p + 4);
                even0 = tm_sxtab16(even0, w0);
                odd0 = tm_sxtab16_ror8(odd0, w0);
                even1 = tm_sxtab16(even1, w1);
                odd1 = tm_sxtab16_ror8(odd1, w1);
                p += win->col_step;
            }
            row += win->row_step;
        }
        const uint32_t sums[4] = {even0, odd0, even1, odd1};
        for (int32_t i = 0; i < 4; ++i) {
            /* sums[i] holds channels 4 * (i / 2) + i % 2 (low lane) and that + 2 (high lane) */
            const int32_t base = ch + 4 * (i >> 1) + (i & 1);
            out[base] = average((int16_t)(sums[i] & 0xFFFFu), win->count, win->half, win->act_min, win->act_max);
            out[base + 2] = average((int32_t)sums[i] >> 16, win->count, win->half, win->act_min, win->act_max);
        }
    }
    for (; ch + 4 <= channels; ch += 4) {
        uint32_t even = 0, odd = 0;
        const int8_t *row = in + ch;
        for (int32_t r = 0; r < win->rows; ++r) {
            const int8_t *p = row;
            for (int32_t k = 0; k < win->cols; ++k) {
                const uint32_t w = tm_load_u32(p);
                even = tm_sxtab16(even, w);
                odd = tm_sxtab16_ror8(odd, w);
                p += win->col_step;
            }
            row += win->row_step;
        }
        out[ch] = average((int16_t)(even & 0xFFFFu), win->count, win->half, win->act_min, win->act_max);
        out[ch + 1] = average((int16_t)(odd & 0xFFFFu), win->count, win->half, win->act_min, win->act_max);
        out[ch + 2] = average((int32_t)even >> 16, win->count, win->half, win->act_min, win->act_max);
        out[ch + 3] = average((int32_t)odd >> 16, win->count, win->half, win->act_min, win->act_max);
    }
    for (; ch < channels; ++ch) {
        int32_t sum = 0;
        const int8_t *row = in + ch;
        for (int32_t r = 0; r < win->rows; ++r) {
            for (int32_t k = 0; k < win->cols; ++k) {
                sum += row[k * win->col_step];
            }
            row += win->row_step;
        }
        out[ch] = average(sum, win->count, win->half, win->act_min, win->act_max);
    }
}

tm_status tm_avg_pool2d_s8_dsp(const tm_context *ctx, const tm_avg_pool2d_params *params,
                               const tm_dims *input_dims, const int8_t *input,
                               const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (!tm_avg_pool2d_args_ok(params, input_dims, input, output_dims, output) ||
        params->filter.h * params->filter.w > TM_AVG_POOL2D_DSP_MAX_COUNT) {
        return TM_ARG_ERROR;
    }

    const int32_t h_in = input_dims->h, w_in = input_dims->w, c = input_dims->c;
    window win;
    win.col_step = c;
    win.row_step = w_in * c;
    win.act_min = params->activation.min;
    win.act_max = params->activation.max;
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
                win.count = win.rows * win.cols;
                win.half = win.count / 2;
                const int8_t *in = input + ((b * h_in + y0 + ky0) * w_in + x0 + kx0) * c;
                pool_channels(&win, in, output + ((b * output_dims->h + oy) * output_dims->w + ox) * c, c);
            }
        }
    }
    return TM_OK;
}

int32_t tm_avg_pool2d_s8_dsp_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
