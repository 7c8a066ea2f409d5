/*
 * DEPTHWISE_CONV_2D (int8) for Cortex-M55 Helium (MVE); the contract and the row-buffer layout are in
 * tm_depthwise_conv2d_s8.h. Bit-exact with LiteRT's reference_integer_ops::DepthwiseConvPerChannel.
 */
#include "tm_depthwise_conv2d_s8.h"

#include "tm_support.h"

/* Pixels per phase of one channel in a row-buffer slot: the last vector of a row may read up to 3 lanes
 * past the output width, and the widest tap reaches ((kw - 1) * dilation) / stride further. */
static int32_t tm_dw_row_pixels(int32_t w_out, int32_t kw, int32_t stride_w, int32_t dilation_w)
{
    return ((w_out + 3) & ~3) + ((kw - 1) * dilation_w) / stride_w + 1;
}

int32_t tm_depthwise_conv2d_s8_mve_get_buffer_size(const tm_depthwise_conv2d_params *params,
                                                   const tm_dims *input_dims, const tm_dims *filter_dims,
                                                   const tm_dims *output_dims)
{
    if (params == NULL || !tm_dims_ok(input_dims) || !tm_dims_ok(filter_dims) || !tm_dims_ok(output_dims) ||
        params->stride.w < 1 || params->dilation.w < 1) {
        return 0;
    }
    const int32_t pixels = tm_dw_row_pixels(output_dims->w, filter_dims->w, params->stride.w, params->dilation.w);
    return filter_dims->h * input_dims->c * params->stride.w * pixels;
}

/* The channel-lane variant's padded planes: the input rows/columns the output window reaches. */
static int32_t tm_dw_cl_extent(int32_t out, int32_t k, int32_t stride, int32_t dilation)
{
    return (out - 1) * stride + (k - 1) * dilation + 1;
}

/* Output rows per band: band_rows clamped to [1, h_out] (h_out: one band, the ring holds the whole padded input). */
static int32_t tm_dw_cl_band(int32_t band_rows, int32_t h_out)
{
    return band_rows < 1 ? 1 : (band_rows > h_out ? h_out : band_rows);
}

int32_t tm_depthwise_conv2d_s8_mve_cl_get_buffer_size(const tm_depthwise_conv2d_params *params, int32_t band_rows,
                                                      const tm_dims *input_dims, const tm_dims *filter_dims,
                                                      const tm_dims *output_dims)
{
    if (params == NULL || !tm_dims_ok(input_dims) || !tm_dims_ok(filter_dims) || !tm_dims_ok(output_dims)) {
        return 0;
    }
    const int32_t band = band_rows < 0 ? output_dims->h : tm_dw_cl_band(band_rows, output_dims->h);
    const int32_t channels = band_rows < 0 && -band_rows < input_dims->c ? -band_rows : input_dims->c;
    return channels * tm_dw_cl_extent(band, filter_dims->h, params->stride.h, params->dilation.h) *
           tm_dw_cl_extent(output_dims->w, filter_dims->w, params->stride.w, params->dilation.w);
}

#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>

/* GCC 12 at -O2 otherwise turns every tap's load address into its own induction variable (ivopts) and
 * hoists loads ahead of their use (sched1): both exhaust the registers and spill the accumulators. Without
 * them the taps compile to VLDRB.S32 with immediate offsets and VMLA, with no spill. */
#pragma GCC push_options
#pragma GCC optimize("no-ivopts", "no-schedule-insns")

#define TM_DW_ALWAYS_INLINE static inline __attribute__((always_inline))
/* Fully unrolled, the accumulators and tap offsets become registers and load immediates. */
#define TM_DW_UNROLL _Pragma("GCC unroll 16")

/* Everything a row needs, computed once per call. */
typedef struct {
    int32_t h_in, w_in, c_in, c_out, ch_mult;
    int32_t kh, kw, h_out, w_out;
    int32_t stride_h, stride_w, dilation_h, dilation_w, pad_h, pad_w;
    int32_t pixels;        /* row_pixels: one phase of one channel in a slot */
    int32_t channel_bytes; /* stride_w * pixels: one channel in a slot */
    int32_t slot_bytes;    /* c_in * channel_bytes */
    int32_t input_zp;
    int32_t output_offset, act_min, act_max;
} tm_dw_geometry;

/* Sets `bytes` bytes to `value`, 16 per store. */
static void tm_dw_set(int8_t *dst, int8_t value, int32_t bytes)
{
    const int8x16_t v = vdupq_n_s8(value);
    for (; bytes >= 64; bytes -= 64, dst += 64) { /* whole vectors: no predicate to build; 4 per loop step */
        vst1q_s8(dst, v);
        vst1q_s8(dst + 16, v);
        vst1q_s8(dst + 32, v);
        vst1q_s8(dst + 48, v);
    }
    for (; bytes >= 16; bytes -= 16, dst += 16) {
        vst1q_s8(dst, v);
    }
    if (bytes > 0) {
        vstrbq_p_s8(dst, v, vctp8q((uint32_t)bytes));
    }
}

/* Copies one input row into a slot, channel-planar and split by column phase. Only the columns inside the
 * input are written: the padding columns keep the zero point every slot gets when the call starts (and a
 * padding row, in_row NULL, sets the whole slot to it). */
static void tm_dw_fill_slot(const tm_dw_geometry *g, int8_t *slot, const int8_t *in_row)
{
    if (in_row == NULL) {
        tm_dw_set(slot, (int8_t)g->input_zp, g->slot_bytes);
        return;
    }
    const int32_t s = g->stride_w, pixels = g->pixels, c_in = g->c_in, channel_bytes = g->channel_bytes;
    const int32_t columns = s * pixels;
    /* Padded column col holds input column col - pad_w; [first, last) are the ones inside the input. */
    int32_t first = g->pad_w, last = g->pad_w + g->w_in;
    first = first < 0 ? 0 : (first > columns ? columns : first);
    last = last < first ? first : (last > columns ? columns : last);
    /* 4 pixels x 4 channels per step: a word gather (4 pixels of the same phase, 4 channels each) and a
     * byte scatter to the 4 channels' planes. Needs word-aligned pixels and byte offsets below 256. */
    const int words = c_in % 4 == 0 && ((uintptr_t)in_row & 3u) == 0 && 3 * channel_bytes + 3 <= 255;
    const uint32x4_t pixel_offsets = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)(s * c_in));
    /* byte 4 p + k of the gathered vector (pixel p, channel k) goes to channel k's plane, position p */
    const uint8x16_t transpose = vaddq_u8(vmulq_n_u8(vandq_u8(vidupq_n_u8(0, 1), vdupq_n_u8(3)),
                                                     (uint8_t)channel_bytes),
                                          vshrq_n_u8(vidupq_n_u8(0, 1), 2));
    const uint32x4_t planes = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)channel_bytes);
    for (int32_t phase = 0; phase < s; ++phase) {
        /* the columns of this phase inside the input: col = phase + j * s, j in [j0, j1) */
        const int32_t j0 = first <= phase ? 0 : (first - phase + s - 1) / s;
        const int32_t j1 = last <= phase ? 0 : (last - phase + s - 1) / s;
        int32_t j = j0;
        if (words) {
            for (; j + 4 <= j1; j += 4) {
                const int8_t *src = in_row + (phase + j * s - g->pad_w) * c_in;
                int8_t *dst = slot + phase * pixels + j;
                for (int32_t ic = 0; ic < c_in; ic += 4) {
                    const int32x4_t v = vldrwq_gather_offset_s32((const int32_t *)(const void *)(src + ic),
                                                                 pixel_offsets);
                    vstrbq_scatter_offset_s8(dst, transpose, vreinterpretq_s8_s32(v));
                    dst += 4 * channel_bytes;
                }
            }
        }
        for (; j < j1; ++j) { /* one pixel: a 4-channel widening load scattered to the 4 planes */
            const int8_t *src = in_row + (phase + j * s - g->pad_w) * c_in;
            int8_t *dst = slot + phase * pixels + j;
            int32_t ic = 0;
            for (; ic + 4 <= c_in; ic += 4) {
                vstrbq_scatter_offset_s32(dst, planes, vldrbq_s32(src));
                src += 4;
                dst += 4 * channel_bytes;
            }
            if (ic < c_in) {
                const mve_pred16_t p = vctp32q((uint32_t)(c_in - ic));
                vstrbq_scatter_offset_p_s32(dst, planes, vldrbq_z_s32(src, p), p);
            }
        }
    }
}

/* Per-channel requantization constants (channel_data, see the header). */
typedef struct {
    int32_t multiplier, left_shift, right_shift; /* right_shift <= 0 (VRSHL shifts right by -right_shift) */
} tm_dw_rescale;

/* TFLite's MultiplyByQuantizedMultiplier + output offset + clamp on 4 lanes.
 * VQRDMULH is SaturatingRoundingDoublingHighMul exactly. RoundingDivideByPOT rounds half away from zero,
 * VRSHL half up: they differ only on negative ties, so a negative value is lowered by one first (when
 * the shift is non-zero; saturating, which keeps INT32_MIN exact). ROUND_RIGHT: the channel shifts right
 * (left_shift 0); else it may shift left (right_shift 0). */
TM_DW_ALWAYS_INLINE int32x4_t tm_dw_requantize(int32x4_t acc, const tm_dw_rescale *r, const int ROUND_RIGHT,
                                               int32_t output_offset, int32x4_t lo, int32x4_t hi)
{
    int32x4_t y;
    if (ROUND_RIGHT) {
        y = vqrdmulhq_n_s32(acc, r->multiplier);
        y = vqaddq_s32(y, vshrq_n_s32(y, 31));
        y = vrshlq_n_s32(y, r->right_shift);
    } else {
        y = vqrdmulhq_n_s32(vshlq_r_s32(acc, r->left_shift), r->multiplier);
    }
    y = vaddq_n_s32(y, output_offset);
    return vminq_s32(vmaxq_s32(y, lo), hi);
}

/* What a block needs besides its channel, copied out of the geometry (the output stores may alias *g). */
typedef struct {
    int32_t pixels, out_step, output_offset, act_min, act_max;
    uint32x4_t store_offsets; /* 0, c_out, 2 c_out, 3 c_out: 4 pixels of one channel */
} tm_dw_row_consts;

#define TM_DW_FIXED_MAX_KH 3 /* the unrolled variant keeps one pointer per kernel row in registers */

/* NV vectors (4 * NV output pixels) of one output channel; rows[ky] + col points at the first input pixel of
 * kernel row ky in the channel's plane. Taps: KH x KW with column stride S and dilation D. FIXED: KH, KW,
 * S, D are constants (the 3x3 variant): the taps unroll and their offsets become load immediates. */
TM_DW_ALWAYS_INLINE void tm_dw_block(const int8_t *const *rows, int32_t col, const int8_t *w, int32_t bias,
                                     const tm_dw_rescale *r, const tm_dw_row_consts *k, int8_t *out,
                                     int32_t valid, const int NV, const int PARTIAL, const int ROUND_RIGHT,
                                     const int FIXED, const int KH, const int KW, const int S, const int D)
{
    int32x4_t acc[4];
    TM_DW_UNROLL
    for (int v = 0; v < NV; ++v) {
        acc[v] = vdupq_n_s32(bias);
    }
    if (FIXED) {
        TM_DW_UNROLL
        for (int ky = 0; ky < KH; ++ky) {
            TM_DW_UNROLL
            for (int kx = 0; kx < KW; ++kx) {
                const int32_t tap = kx * D;
                const int8_t *in = rows[ky] + col + (tap % S) * k->pixels + tap / S;
                const int32_t wt = w[ky * KW + kx];
                TM_DW_UNROLL
                for (int v = 0; v < NV; ++v) {
                    acc[v] = vmlaq_n_s32(acc[v], vldrbq_s32(in + 4 * v), wt);
                }
            }
        }
    } else {
        const int8_t *wk = w;
        for (int ky = 0; ky < KH; ++ky) {
            for (int kx = 0; kx < KW; ++kx) {
                const int32_t tap = kx * D;
                const int8_t *in = rows[ky] + col + (tap % S) * k->pixels + tap / S;
                const int32_t wt = *wk++;
                TM_DW_UNROLL
                for (int v = 0; v < NV; ++v) {
                    acc[v] = vmlaq_n_s32(acc[v], vldrbq_s32(in + 4 * v), wt);
                }
            }
        }
    }
    const int32x4_t lo = vdupq_n_s32(k->act_min), hi = vdupq_n_s32(k->act_max);
    TM_DW_UNROLL
    for (int v = 0; v < NV; ++v) {
        const int32x4_t y = tm_dw_requantize(acc[v], r, ROUND_RIGHT, k->output_offset, lo, hi);
        if (PARTIAL && v == NV - 1) {
            vstrbq_scatter_offset_p_s32(out + v * k->out_step, k->store_offsets, y,
                                        vctp32q((uint32_t)(valid - 4 * v)));
        } else {
            vstrbq_scatter_offset_s32(out + v * k->out_step, k->store_offsets, y);
        }
    }
}

/* One output row of one channel: blocks of 16 pixels, then the remaining 1-15 in one block.
 * rows[ky]: the channel's plane in kernel row ky's slot (advanced here, so the caller passes a copy). */
TM_DW_ALWAYS_INLINE void tm_dw_channel_row(const int8_t **rows, const int8_t *w, int32_t bias,
                                           const tm_dw_rescale *r, const tm_dw_row_consts *k, int32_t w_out,
                                           int8_t *out, const int ROUND_RIGHT, const int FIXED, const int KH,
                                           const int KW, const int S, const int D)
{
    int32_t rest = w_out;
    for (; rest >= 16; rest -= 16) {
        tm_dw_block(rows, 0, w, bias, r, k, out, 16, 4, 0, ROUND_RIGHT, FIXED, KH, KW, S, D);
        out += 4 * k->out_step;
        if (FIXED) {
            TM_DW_UNROLL
            for (int ky = 0; ky < KH; ++ky) {
                rows[ky] += 16;
            }
        } else {
            for (int ky = 0; ky < KH; ++ky) {
                rows[ky] += 16;
            }
        }
    }
    switch ((rest + 3) >> 2) {
    case 1:
        tm_dw_block(rows, 0, w, bias, r, k, out, rest, 1, 1, ROUND_RIGHT, FIXED, KH, KW, S, D);
        break;
    case 2:
        tm_dw_block(rows, 0, w, bias, r, k, out, rest, 2, 1, ROUND_RIGHT, FIXED, KH, KW, S, D);
        break;
    case 3:
        tm_dw_block(rows, 0, w, bias, r, k, out, rest, 3, 1, ROUND_RIGHT, FIXED, KH, KW, S, D);
        break;
    case 4:
        tm_dw_block(rows, 0, w, bias, r, k, out, rest, 4, 1, ROUND_RIGHT, FIXED, KH, KW, S, D);
        break;
    default:
        break;
    }
}

/* One output row of a channel that may shift left (shift >= 0, a scale of 1/2 or more: rare), from the plane at
 * `base` in every slot: one vector of 4 pixels at a time with the generic taps, out of line, so that the
 * unrolled rows carry only the right-shifting form. */
__attribute__((noinline)) static void tm_dw_channel_row_left(const tm_dw_geometry *g, int8_t *const *slots,
                                                             int32_t base, const int8_t *w, const int32_t *cd,
                                                             int8_t *out)
{
    const tm_dw_rescale r = {cd[1], cd[2], cd[3]};
    tm_dw_row_consts k;
    k.pixels = g->pixels;
    k.out_step = 4 * g->c_out;
    k.output_offset = g->output_offset;
    k.act_min = g->act_min;
    k.act_max = g->act_max;
    k.store_offsets = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)g->c_out);
    for (int32_t x = 0; x < g->w_out; x += 4) {
        tm_dw_block((const int8_t *const *)slots, base + x, w, cd[0], &r, &k, out, g->w_out - x, 1, 1, 0, 0,
                    g->kh, g->kw, g->stride_w, g->dilation_w);
        out += k.out_step;
    }
}

/* One output row, every channel. slots[ky]: the slot holding the input row of kernel row ky. */
TM_DW_ALWAYS_INLINE void tm_dw_row(const tm_dw_geometry *g, int8_t *const *slots, const int8_t *filter,
                                   const int32_t *channel_data, int8_t *out_row, const int FIXED, const int KH,
                                   const int KW, const int S, const int D)
{
    const int32_t c_out = g->c_out, w_out = g->w_out, ch_mult = g->ch_mult, channel_bytes = g->channel_bytes;
    tm_dw_row_consts k;
    k.pixels = g->pixels;
    k.out_step = 4 * c_out;
    k.output_offset = g->output_offset;
    k.act_min = g->act_min;
    k.act_max = g->act_max;
    k.store_offsets = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)c_out);
    const int32_t taps = KH * KW;
    int32_t base = 0, m = 0;
    for (int32_t oc = 0; oc < c_out; ++oc) {
        const int32_t *cd = channel_data + 4 * oc;
        const tm_dw_rescale r = {cd[1], cd[2], cd[3]};
        if (r.right_shift < 0) {
            const int8_t *rows[TM_DW_MVE_MAX_KH];
            if (FIXED) {
                TM_DW_UNROLL
                for (int ky = 0; ky < KH; ++ky) {
                    rows[ky] = slots[ky] + base;
                }
            } else {
                for (int ky = 0; ky < KH; ++ky) {
                    rows[ky] = slots[ky] + base;
                }
            }
            tm_dw_channel_row(rows, filter + oc * taps, cd[0], &r, &k, w_out, out_row + oc, 1, FIXED, KH, KW, S, D);
        } else {
            tm_dw_channel_row_left(g, slots, base, filter + oc * taps, cd, out_row + oc);
        }
        if (++m == ch_mult) { /* the next input channel's plane */
            m = 0;
            base += channel_bytes;
        }
    }
}

static void tm_dw_row_3x3_s1(const tm_dw_geometry *g, int8_t *const *slots, const int8_t *filter,
                             const int32_t *channel_data, int8_t *out_row)
{
    tm_dw_row(g, slots, filter, channel_data, out_row, 1, 3, 3, 1, 1);
}

static void tm_dw_row_3x3_s2(const tm_dw_geometry *g, int8_t *const *slots, const int8_t *filter,
                             const int32_t *channel_data, int8_t *out_row)
{
    tm_dw_row(g, slots, filter, channel_data, out_row, 1, 3, 3, 2, 1);
}

static void tm_dw_row_any(const tm_dw_geometry *g, int8_t *const *slots, const int8_t *filter,
                          const int32_t *channel_data, int8_t *out_row)
{
    tm_dw_row(g, slots, filter, channel_data, out_row, 0, g->kh, g->kw, g->stride_w, g->dilation_w);
}

typedef void (*tm_dw_row_fn)(const tm_dw_geometry *g, int8_t *const *slots, const int8_t *filter,
                             const int32_t *channel_data, int8_t *out_row);

static tm_status tm_dw_run(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                           const int32_t *channel_data, const tm_dims *input_dims, const int8_t *input,
                           const tm_dims *filter_dims, const int8_t *filter, const tm_dims *output_dims,
                           int8_t *output, tm_dw_row_fn row_fn)
{
    if (ctx == NULL || params == NULL || channel_data == NULL || input == NULL || filter == NULL ||
        output == NULL || !tm_dims_ok(input_dims) || !tm_dims_ok(filter_dims) || !tm_dims_ok(output_dims) ||
        params->ch_mult < 1 || filter_dims->n != 1 || filter_dims->h > TM_DW_MVE_MAX_KH ||
        filter_dims->c != (int64_t)input_dims->c * params->ch_mult || output_dims->c != filter_dims->c ||
        output_dims->n != input_dims->n || !tm_window_ok(&params->stride, &params->dilation) ||
        !tm_activation_ok(&params->activation) || params->input_offset < -127 || params->input_offset > 128) {
        return TM_ARG_ERROR;
    }
    const int32_t needed = tm_depthwise_conv2d_s8_mve_get_buffer_size(params, input_dims, filter_dims, output_dims);
    if (ctx->buf == NULL || ctx->size < needed) {
        return TM_ARG_ERROR;
    }
    for (int32_t oc = 0; oc < output_dims->c; ++oc) {
        const int32_t left = channel_data[4 * oc + 2], right = channel_data[4 * oc + 3];
        if (left < 0 || left > 30 || right > 0 || right < -31 || (left != 0 && right != 0)) {
            return TM_ARG_ERROR;
        }
    }

    tm_dw_geometry g;
    g.h_in = input_dims->h;
    g.w_in = input_dims->w;
    g.c_in = input_dims->c;
    g.c_out = output_dims->c;
    g.ch_mult = params->ch_mult;
    g.kh = filter_dims->h;
    g.kw = filter_dims->w;
    g.h_out = output_dims->h;
    g.w_out = output_dims->w;
    g.stride_h = params->stride.h;
    g.stride_w = params->stride.w;
    g.dilation_h = params->dilation.h;
    g.dilation_w = params->dilation.w;
    g.pad_h = params->padding.h;
    g.pad_w = params->padding.w;
    g.pixels = tm_dw_row_pixels(g.w_out, g.kw, g.stride_w, g.dilation_w);
    g.channel_bytes = g.stride_w * g.pixels;
    g.slot_bytes = g.c_in * g.channel_bytes;
    g.input_zp = -params->input_offset;
    g.output_offset = params->output_offset;
    g.act_min = params->activation.min;
    g.act_max = params->activation.max;

    int8_t *const buf = (int8_t *)ctx->buf;
    /* Which input row each slot holds: batch * h_in + row, -1 a padding row, -2 nothing yet. */
    int32_t held[TM_DW_MVE_MAX_KH];
    for (int32_t k = 0; k < g.kh; ++k) {
        held[k] = -2;
    }
    tm_dw_set(buf, (int8_t)g.input_zp, g.kh * g.slot_bytes);
    const int32_t row_bytes = g.w_in * g.c_in, out_row_bytes = g.w_out * g.c_out;
    for (int32_t b = 0; b < output_dims->n; ++b) {
        for (int32_t oy = 0; oy < g.h_out; ++oy) {
            int32_t want[TM_DW_MVE_MAX_KH];
            int8_t *slots[TM_DW_MVE_MAX_KH];
            for (int32_t ky = 0; ky < g.kh; ++ky) {
                const int32_t iy = oy * g.stride_h - g.pad_h + ky * g.dilation_h;
                want[ky] = iy < 0 || iy >= g.h_in ? -1 : b * g.h_in + iy;
            }
            for (int32_t ky = 0; ky < g.kh; ++ky) {
                int32_t slot = -1;
                for (int32_t k = 0; k < g.kh && slot < 0; ++k) {
                    if (held[k] == want[ky]) {
                        slot = k;
                    }
                }
                if (slot < 0) { /* a slot whose row this output row does not read: there is one */
                    for (int32_t k = 0; k < g.kh && slot < 0; ++k) {
                        int32_t wanted = 0;
                        for (int32_t j = 0; j < g.kh; ++j) {
                            wanted |= held[k] == want[j];
                        }
                        if (!wanted) {
                            slot = k;
                        }
                    }
                    held[slot] = want[ky];
                    tm_dw_fill_slot(&g, buf + slot * g.slot_bytes,
                                    want[ky] < 0 ? NULL : input + (int64_t)want[ky] * row_bytes);
                }
                slots[ky] = buf + slot * g.slot_bytes;
            }
            row_fn(&g, slots, filter, channel_data, output + ((int64_t)b * g.h_out + oy) * out_row_bytes);
        }
    }
    return TM_OK;
}

/* The 3x3 variants' window: 3x3, no dilation, row stride 1 or 2, this column stride. */
static int tm_dw_is_3x3(const tm_depthwise_conv2d_params *params, const tm_dims *filter_dims, int32_t stride_w)
{
    return params != NULL && filter_dims != NULL && filter_dims->h == 3 && filter_dims->w == 3 &&
           params->dilation.h == 1 && params->dilation.w == 1 && params->stride.h >= 1 && params->stride.h <= 2 &&
           params->stride.w == stride_w;
}

/* One entry point per column stride, so that a model links only the unrolled rows it runs. */
tm_status tm_depthwise_conv2d_s8_mve_3x3_s1(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                            const int32_t *channel_data,
                                            const tm_dims *input_dims, const int8_t *input,
                                            const tm_dims *filter_dims, const int8_t *filter,
                                            const tm_dims *output_dims, int8_t *output)
{
    if (!tm_dw_is_3x3(params, filter_dims, 1)) {
        return TM_ARG_ERROR;
    }
    return tm_dw_run(ctx, params, channel_data, input_dims, input, filter_dims, filter, output_dims, output,
                     tm_dw_row_3x3_s1);
}

tm_status tm_depthwise_conv2d_s8_mve_3x3_s2(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                            const int32_t *channel_data,
                                            const tm_dims *input_dims, const int8_t *input,
                                            const tm_dims *filter_dims, const int8_t *filter,
                                            const tm_dims *output_dims, int8_t *output)
{
    if (!tm_dw_is_3x3(params, filter_dims, 2)) {
        return TM_ARG_ERROR;
    }
    return tm_dw_run(ctx, params, channel_data, input_dims, input, filter_dims, filter, output_dims, output,
                     tm_dw_row_3x3_s2);
}

tm_status tm_depthwise_conv2d_s8_mve(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                     const int32_t *channel_data,
                                     const tm_dims *input_dims, const int8_t *input,
                                     const tm_dims *filter_dims, const int8_t *filter,
                                     const tm_dims *output_dims, int8_t *output)
{
    return tm_dw_run(ctx, params, channel_data, input_dims, input, filter_dims, filter, output_dims, output,
                     tm_dw_row_any);
}

/* ---- Channel-lane variant (tm_depthwise_conv2d_s8_mve_cl, see the header) ----
 * One output pixel of 4 channels per step: each channel's window (<= 16 taps) is gathered from its padded
 * plane with one VLDRB gather (byte offsets of the taps, the same for every pixel and channel) and reduced
 * with one VMLADAV.S8 against the channel's 16-byte weight vector (zeros past the last tap). The 4 sums form
 * one vector: bias, requantization with per-lane constants and a contiguous 4-byte store. No lane is
 * wasted on small images, which the pixel-lane variants pad up to multiples of 4 pixels per channel. */

/* The channel-lane variants' 16-tap gathers per window. */
static int32_t tm_dw_cl_chunks(int32_t kh, int32_t kw)
{
    return (kh * kw + 15) / 16;
}

/* The output pixels are walked in two nested loops, the longer output axis inside (fewer loop set-ups).
 * A window of more than 16 taps is gathered in chunks of 16 (taps 16 t ..): chunk t from the plane row of its
 * first tap (chunk_base[t] bytes on), at byte offsets chunk_offsets[t]; a window of at most 16 taps is chunk 0. */
typedef struct tm_dw_cl_geometry tm_dw_cl_geometry;

/* A pass over the channels 0 .. channels - 1 of the planes in buf (channel 0 = the filter's, channel_data's,
 * out's first): tm_dw_cl_groups_large, passed by its entry point only, so that a model without large windows
 * does not link it (tm_dw_cl_groups is called directly: inlined, as the grouped form calls it per group). */
typedef void (*tm_dw_cl_groups_fn)(const tm_dw_cl_geometry *k, int32_t channels, const int8_t *buf,
                                   const int8_t *filter, const int32_t *channel_data, int32_t output_offset,
                                   int8_t *out);

struct tm_dw_cl_geometry {
    int32_t c_out, plane;
    int32_t outer, outer_in_step, outer_out_step; /* count, input and output steps of the outer loop */
    int32_t inner, in_step, out_step;             /* the same for the inner loop */
    int32_t chunks;
    int32_t chunk_base[TM_DW_CL_MAX_CHUNKS];
    uint8x16_t chunk_offsets[TM_DW_CL_MAX_CHUNKS];
    tm_dw_cl_groups_fn large_groups; /* NULL: one chunk (in memory: the band loop is short of registers) */
};

/* Chunk t's base and gather offsets into k (row_bytes: one window row in the planes); 0 where an offset would
 * not fit a byte. The last tap's offset is the largest: a row on is row_bytes > (kw - 1) * dilation_w bytes on. */
TM_DW_ALWAYS_INLINE int tm_dw_cl_chunk(tm_dw_cl_geometry *k, int32_t t, int32_t taps, int32_t kw, int32_t row_bytes,
                                       int32_t dilation_w)
{
    const int32_t base = t == 0 ? 0 : (16 * t / kw) * row_bytes;
    const int32_t last = taps < 16 * t + 16 ? taps - 1 : 16 * t + 15;
    if ((last / kw) * row_bytes + (last % kw) * dilation_w - base > 255) {
        return 0;
    }
    k->chunk_base[t] = base;
    uint8_t offsets[16];
    for (int32_t lane = 0; lane < 16; ++lane) {
        const int32_t tap = 16 * t + lane;
        offsets[lane] = tap < taps ? (uint8_t)((tap / kw) * row_bytes + (tap % kw) * dilation_w - base) : 0;
    }
    k->chunk_offsets[t] = vldrbq_u8(offsets);
    return 1;
}

/* {a, b, c, d} in two instructions: VMOV Dm, Rt, Rt2 (Dm bits [31:0] = Rt) into each half of the Q register.
 * GCC 12 builds the vector through the stack, or with 4 lane moves; the MVE two-lane VMOV is avoided, its
 * operand order differs between tools. */
TM_DW_ALWAYS_INLINE int32x4_t tm_dw_lanes(int32_t a, int32_t b, int32_t c, int32_t d)
{
    int32x4_t v;
    __asm__("vmov %e0, %1, %2\n\tvmov %f0, %3, %4" : "=w"(v) : "r"(a), "r"(b), "r"(c), "r"(d));
    return v;
}

/* The 4 window sums of channels c .. c + 3 (lanes) to their output bytes: tm_dw_requantize with ROUND_RIGHT,
 * per-lane constants from cd (channel_data of the group). */
TM_DW_ALWAYS_INLINE void tm_dw_cl_store(int32x4_t sums, const int32_t *cd, int32_t output_offset, int8_t *o)
{
    const int32x4_t acc = vaddq_s32(sums, vldrwq_s32(cd));
    int32x4_t y = vqrdmulhq_s32(acc, vldrwq_s32(cd + 4));
    y = vqaddq_s32(y, vshrq_n_s32(y, 31));
    y = vrshlq_s32(y, vldrwq_s32(cd + 8));
    y = vaddq_n_s32(y, output_offset);
    /* the clamp vectors from cd too: kept in registers they are spilled, and reloading a spill costs an
     * extra address computation */
    vstrbq_s32(o, vminq_s32(vmaxq_s32(y, vldrwq_s32(cd + 12)), vldrwq_s32(cd + 16)));
}

/* 4 channels (c .. c + 3) of a window of at most 16 taps, every lane shifting right.
 * no-auto-inc-dec: else GCC copies the constants' pointer each step to load the first with write-back. */
__attribute__((optimize("no-auto-inc-dec")))
static void tm_dw_cl_group(const tm_dw_cl_geometry *k, const int8_t *plane, const int8_t *w, const int32_t *cdata,
                           int32_t output_offset, int8_t *out)
{
    const int8x16_t w0 = vldrbq_s8(w), w1 = vldrbq_s8(w + 16), w2 = vldrbq_s8(w + 32), w3 = vldrbq_s8(w + 48);
    const uint8x16_t offsets = k->chunk_offsets[0];
    const int32_t p = k->plane, inner = k->inner, in_step = k->in_step, out_step = k->out_step;
    for (int32_t i = 0; i < k->outer; ++i) {
        const int8_t *x = plane + i * k->outer_in_step;
        int8_t *o = out + i * k->outer_out_step;
        const int32_t *cd = cdata;
        for (int32_t j = 0; j < inner; ++j) {
            /* Opaque to GCC (it may have changed), so the constants load with immediate offsets from this one
             * register instead of one hoisted pointer each (which spilled the loop's steps). */
            __asm__ volatile("" : "+r"(cd));
            const int32_t a0 = vmladavq_s8(vldrbq_gather_offset_s8(x, offsets), w0);
            const int32_t a1 = vmladavq_s8(vldrbq_gather_offset_s8(x + p, offsets), w1);
            const int32_t a2 = vmladavq_s8(vldrbq_gather_offset_s8(x + 2 * p, offsets), w2);
            const int32_t a3 = vmladavq_s8(vldrbq_gather_offset_s8(x + 3 * p, offsets), w3);
            tm_dw_cl_store(tm_dw_lanes(a0, a1, a2, a3), cd, output_offset, o);
            o += out_step;
            x += in_step;
        }
    }
}

/* tm_dw_cl_group for windows of more than 16 taps: the chunks accumulate with VMLADAVA, their weights
 * ([chunk][lane][16] from w) loaded per step (4 channels of 2-4 chunks do not stay in the 8 Q registers). */
__attribute__((optimize("no-auto-inc-dec")))
static void tm_dw_cl_group_large(const tm_dw_cl_geometry *k, const int8_t *plane, const int8_t *w,
                                 const int32_t *cdata, int32_t output_offset, int8_t *out)
{
    const int32_t p = k->plane, inner = k->inner, in_step = k->in_step, out_step = k->out_step;
    const int32_t chunks = k->chunks;
    for (int32_t i = 0; i < k->outer; ++i) {
        const int8_t *x = plane + i * k->outer_in_step;
        int8_t *o = out + i * k->outer_out_step;
        const int32_t *cd = cdata;
        for (int32_t j = 0; j < inner; ++j) {
            __asm__ volatile("" : "+r"(cd)); /* as in tm_dw_cl_group */
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            const int8_t *wt = w;
            for (int32_t t = 0; t < chunks; ++t) {
                const int8_t *xt = x + k->chunk_base[t];
                const uint8x16_t offsets = k->chunk_offsets[t];
                a0 = vmladavaq_s8(a0, vldrbq_gather_offset_s8(xt, offsets), vldrbq_s8(wt));
                a1 = vmladavaq_s8(a1, vldrbq_gather_offset_s8(xt + p, offsets), vldrbq_s8(wt + 16));
                a2 = vmladavaq_s8(a2, vldrbq_gather_offset_s8(xt + 2 * p, offsets), vldrbq_s8(wt + 32));
                a3 = vmladavaq_s8(a3, vldrbq_gather_offset_s8(xt + 3 * p, offsets), vldrbq_s8(wt + 48));
                wt += 64;
            }
            tm_dw_cl_store(tm_dw_lanes(a0, a1, a2, a3), cd, output_offset, o);
            o += out_step;
            x += in_step;
        }
    }
}

static void tm_dw_cl_groups(const tm_dw_cl_geometry *k, int32_t channels, const int8_t *buf, const int8_t *filter,
                            const int32_t *channel_data, int32_t output_offset, int8_t *out)
{
    for (int32_t c = 0; c < channels; c += 4) {
        tm_dw_cl_group(k, buf + c * k->plane, filter + c * 16, channel_data + c * 5, output_offset, out + c);
    }
}

static void tm_dw_cl_groups_large(const tm_dw_cl_geometry *k, int32_t channels, const int8_t *buf,
                                  const int8_t *filter, const int32_t *channel_data, int32_t output_offset,
                                  int8_t *out)
{
    for (int32_t c = 0; c < channels; c += 4) {
        tm_dw_cl_group_large(k, buf + c * k->plane, filter + c * 16 * k->chunks, channel_data + c * 5,
                             output_offset, out + c);
    }
}

/* One input row (its first `channels` channels) into its row of the padded planes (the padding keeps the zero
 * point set when the call starts): 8 channels of one pixel per widening load and byte scatter (16-bit offsets:
 * 7 planes < 64 KiB). */
static void tm_dw_cl_fill_row(const tm_dw_geometry *f, int32_t channels, int8_t *dst_row, const int8_t *in_row,
                              uint16x8_t planes)
{
    const int32_t c_in = f->c_in, plane = f->channel_bytes;
    int32_t first = f->pad_w, last = f->pad_w + f->w_in;
    first = first < 0 ? 0 : (first > f->pixels ? f->pixels : first);
    last = last < first ? first : (last > f->pixels ? f->pixels : last);
    const int32_t n = last - first;
    const int8_t *const src0 = in_row + (first - f->pad_w) * c_in;
    int8_t *const dst0 = dst_row + first;
    /* channels outside, columns inside: both steps are constant, so the inner loop is 2 loads/stores */
    int32_t c = 0;
    for (; c + 8 <= channels; c += 8) {
        const int8_t *src = src0 + c;
        int8_t *dst = dst0 + c * plane;
        for (int32_t i = 0; i < n; ++i) {
            vstrbq_scatter_offset_s16(dst, planes, vldrbq_s16(src));
            src += c_in;
            ++dst;
        }
    }
    if (c < channels) {
        const mve_pred16_t p = vctp16q((uint32_t)(channels - c));
        const int8_t *src = src0 + c;
        int8_t *dst = dst0 + c * plane;
        for (int32_t i = 0; i < n; ++i) {
            vstrbq_scatter_offset_p_s16(dst, planes, vldrbq_z_s16(src, p), p);
            src += c_in;
            ++dst;
        }
    }
}

static tm_status tm_dw_cl_run(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                              const int32_t *channel_data, int32_t band_rows, const tm_dims *input_dims,
                              const int8_t *input, const tm_dims *filter_dims, const int8_t *filter,
                              const tm_dims *output_dims, int8_t *output, tm_dw_cl_groups_fn large_groups)
{
    if (ctx == NULL || params == NULL || channel_data == NULL || input == NULL || filter == NULL ||
        output == NULL || !tm_dims_ok(input_dims) || !tm_dims_ok(filter_dims) || !tm_dims_ok(output_dims) ||
        params->ch_mult != 1 || filter_dims->n != 1 ||
        filter_dims->c != input_dims->c || output_dims->c != input_dims->c || input_dims->c % 4 != 0 ||
        output_dims->n != input_dims->n || !tm_window_ok(&params->stride, &params->dilation) ||
        !tm_activation_ok(&params->activation) || params->input_offset < -127 || params->input_offset > 128) {
        return TM_ARG_ERROR;
    }
    /* channels per pass: all, or a group (band_rows < 0, whole planes) */
    const int32_t group = band_rows < 0 ? -band_rows : input_dims->c;
    if (group % 4 != 0 || group > input_dims->c) {
        return TM_ARG_ERROR;
    }
    const int32_t band = band_rows < 0 ? output_dims->h : tm_dw_cl_band(band_rows, output_dims->h);
    const int32_t hp = tm_dw_cl_extent(band, filter_dims->h, params->stride.h, params->dilation.h); /* ring rows */
    const int32_t wp = tm_dw_cl_extent(output_dims->w, filter_dims->w, params->stride.w, params->dilation.w);
    const int32_t kh = filter_dims->h, kw = filter_dims->w;
    tm_dw_cl_geometry k;
    k.chunks = tm_dw_cl_chunks(kh, kw);
    k.large_groups = large_groups;
    if ((large_groups == NULL) != (k.chunks == 1) || k.chunks > TM_DW_CL_MAX_CHUNKS || 7 * hp * wp > 65535) {
        return TM_ARG_ERROR; /* each variant's tap count, the fill's 16-bit scatter offsets */
    }
    /* chunk 0 apart: its base is 0, its offsets as cheap to set up as a single chunk's */
    const int32_t taps = kh * kw, window_row = params->dilation.h * wp;
    int ok = tm_dw_cl_chunk(&k, 0, taps, kw, window_row, params->dilation.w);
    for (int32_t t = 1; t < k.chunks; ++t) {
        ok &= tm_dw_cl_chunk(&k, t, taps, kw, window_row, params->dilation.w);
    }
    if (!ok) {
        return TM_ARG_ERROR;
    }
    const int32_t needed = tm_depthwise_conv2d_s8_mve_cl_get_buffer_size(params, band_rows, input_dims,
                                                                         filter_dims, output_dims);
    if (ctx->buf == NULL || ctx->size < needed) {
        return TM_ARG_ERROR;
    }
    for (int32_t c = 0; c < output_dims->c; c += 4) { /* a group's 4 lanes at once */
        const int32_t *cd = channel_data + c * 5;
        const int32x4_t right = vldrwq_s32(cd + 8);
        const mve_pred16_t bad = vcmpgtq_n_s32(right, -1) | vcmpltq_n_s32(right, -31) |
                                 vcmpneq_n_s32(vldrwq_s32(cd + 12), params->activation.min) |
                                 vcmpneq_n_s32(vldrwq_s32(cd + 16), params->activation.max);
        if (bad != 0) {
            return TM_ARG_ERROR;
        }
    }

    /* The fill's view of the planes: rows of wp columns (pixels), one plane of hp * wp bytes per channel. */
    tm_dw_geometry f;
    f.c_in = input_dims->c;
    f.w_in = input_dims->w;
    f.stride_w = 1;
    f.pixels = wp;
    f.channel_bytes = hp * wp;
    f.slot_bytes = group * f.channel_bytes;
    f.pad_w = params->padding.w;
    f.input_zp = -params->input_offset;

    k.c_out = output_dims->c;
    k.plane = hp * wp;
    const int32_t row_in = params->stride.h * wp, row_out = output_dims->w * k.c_out;

    const uint16x8_t plane_offsets = vmulq_n_u16(vidupq_n_u16(0, 1), (uint16_t)k.plane);
    int8_t *const buf = (int8_t *)ctx->buf;
    const int32_t h_in = input_dims->h, h_out = output_dims->h, row_bytes = input_dims->w * input_dims->c;
    /* The ring's padding holds the zero point (the fill never writes it): set when a band's rows meet the
     * vertical padding, unless the previous band filled exactly the same rows (the groups' single bands). */
    int32_t clean = 0, last_iy0 = 0, last_rows = 0;
    for (int32_t b = 0; b < output_dims->n; ++b) {
        const int8_t *const in = input + (int64_t)b * h_in * row_bytes;
        for (int32_t c0 = 0; c0 < k.c_out; c0 += group) {
            const int32_t channels = k.c_out - c0 < group ? k.c_out - c0 : group;
            for (int32_t oy = 0; oy < h_out; oy += band) {
                const int32_t rows = h_out - oy < band ? h_out - oy : band;
                const int32_t ring_rows = tm_dw_cl_extent(rows, kh, params->stride.h, params->dilation.h);
                const int32_t iy0 = oy * params->stride.h - params->padding.h; /* input row of ring row 0 */
                const int padded = iy0 < 0 || iy0 + ring_rows > h_in;
                if (!clean || (padded && (iy0 != last_iy0 || ring_rows != last_rows))) {
                    tm_dw_set(buf, (int8_t)f.input_zp, f.slot_bytes);
                    clean = 1;
                }
                last_iy0 = iy0;
                last_rows = ring_rows;
                const int32_t r0 = iy0 < 0 ? -iy0 : 0, r1 = iy0 + ring_rows > h_in ? h_in - iy0 : ring_rows;
                for (int32_t r = r0; r < r1; ++r) {
                    tm_dw_cl_fill_row(&f, channels, buf + r * wp, in + (int64_t)(iy0 + r) * row_bytes + c0,
                                      plane_offsets);
                }
                if (rows > output_dims->w) { /* columns outside, rows inside: fewer loop set-ups */
                    k.outer = output_dims->w;
                    k.outer_in_step = params->stride.w;
                    k.outer_out_step = k.c_out;
                    k.inner = rows;
                    k.in_step = row_in;
                    k.out_step = row_out;
                } else {
                    k.outer = rows;
                    k.outer_in_step = row_in;
                    k.outer_out_step = row_out;
                    k.inner = output_dims->w;
                    k.in_step = params->stride.w;
                    k.out_step = k.c_out;
                }
                int8_t *const out = output + ((int64_t)b * h_out + oy) * row_out + c0;
                if (k.large_groups == NULL) {
                    tm_dw_cl_groups(&k, channels, buf, filter + c0 * 16, channel_data + c0 * 5,
                                    params->output_offset, out);
                } else {
                    k.large_groups(&k, channels, buf, filter + c0 * 16 * k.chunks, channel_data + c0 * 5,
                                 params->output_offset, out);
                }
            }
        }
    }
    return TM_OK;
}

tm_status tm_depthwise_conv2d_s8_mve_cl(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                        const int32_t *channel_data, int32_t band_rows,
                                        const tm_dims *input_dims, const int8_t *input,
                                        const tm_dims *filter_dims, const int8_t *filter,
                                        const tm_dims *output_dims, int8_t *output)
{
    return tm_dw_cl_run(ctx, params, channel_data, band_rows, input_dims, input, filter_dims, filter, output_dims,
                        output, NULL);
}

/* A separate entry point, so that a model without large windows does not link their chunk loop. */
tm_status tm_depthwise_conv2d_s8_mve_cl_large(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                              const int32_t *channel_data, int32_t band_rows,
                                              const tm_dims *input_dims, const int8_t *input,
                                              const tm_dims *filter_dims, const int8_t *filter,
                                              const tm_dims *output_dims, int8_t *output)
{
    return tm_dw_cl_run(ctx, params, channel_data, band_rows, input_dims, input, filter_dims, filter, output_dims,
                        output, tm_dw_cl_groups_large);
}

#pragma GCC pop_options

#endif /* __ARM_FEATURE_MVE */
