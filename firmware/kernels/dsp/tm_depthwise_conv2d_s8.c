/*
 * DEPTHWISE_CONV_2D (int8) on the dsp path: 3x3 and KxK (up to 7x7), stride 1 or 2, ch_mult 1 (see
 * tm_depthwise_conv2d_s8.h),
 * bit-exact with LiteRT's reference_integer_ops::DepthwiseConvPerChannel.
 */
#include <string.h>

#include "tm_nn.h"
#include "tm_support.h"
#include "tm_simd.h"
#include "tm_depthwise_conv2d_s8.h"

/* A ring slot's key when it holds an input row of the padding (all zeros). */
#define DW_ZERO_ROW INT32_MIN

/* Largest scratch taken for planes, whatever the compiler's budget (`scratch_budget`, the arena bytes free at
 * the layer): beyond it more channels per group save little. Mirrored by
 * toolchain/compiler/ops/dsp/depthwise_conv2d.py. */
#define DW_PLANE_BUDGET 4096

/* Line width (int16 per channel and input row) of a stride and window width kc (odd: the taps along a line):
 * the pairs of outputs of a row read up to line index stride * (w_out rounded up to even) + kc - 2. Even, so
 * every line starts word-aligned. */
static inline int32_t dw_line_width(int32_t w_out, int32_t stride, int32_t kc)
{
    return stride * ((w_out + 1) & ~1) + kc - 1;
}

/* Lines run along the longer output axis: along W, or along H (a transposed layer, h_out > w_out, whose
 * packed weights are transposed too), so that short rows (KWS: 25 x 5) do not pay the per-line set-up and
 * tail five times as often. */
static inline int dw_transposed(const tm_dims *output_dims)
{
    return output_dims->h > output_dims->w;
}

/* The scratch layout of a layer whose window is kr lines by kc taps along them (3 x 3 for the 3x3 variants).
 * Planes (narrow images): channels in groups of `group`, each channel's lines for every padded input row
 * (rows = (outputs across - 1) * stride + kr) one after the other, so a channel runs down the whole output at
 * once. Ring (group == 0): kr slots, each one input row of every channel. Chosen within `budget` bytes, planes
 * within min(budget, DW_PLANE_BUDGET): every channel's planes if they fit, else groups of a multiple of 4
 * channels (four per widened word), else the ring if it fits, else groups of 1-3 channels if one fits, else the
 * smaller of one channel's planes and the ring (the leanest form: the compiler's first memory pass passes
 * budget 0). */
typedef struct {
    int32_t lw, rows, group, bytes;
} dw_layout;

static inline dw_layout dw_plan(const tm_dims *output_dims, int32_t stride, int32_t kr, int32_t kc, int32_t budget)
{
    const int t = dw_transposed(output_dims);
    const int32_t channels = output_dims->c;
    dw_layout l;
    l.lw = dw_line_width(t ? output_dims->h : output_dims->w, stride, kc);
    l.rows = ((t ? output_dims->w : output_dims->h) - 1) * stride + kr;
    const int32_t plane = l.rows * l.lw * 2, ring = kr * channels * l.lw * 2;
    const int32_t b = budget < 0 ? 0 : budget;
    int32_t group = (b > DW_PLANE_BUDGET ? DW_PLANE_BUDGET : b) / plane;
    if (group >= channels) {
        group = channels;
    } else if (group >= 4) {
        group &= ~3;
    } else if (ring <= b) {
        group = 0;
    } else if (group == 0) {
        group = plane < ring ? 1 : 0;
    }
    l.group = group;
    l.bytes = group > 0 ? group * plane : ring;
    return l;
}

/* The KxK variants' window in line terms: kr lines (the filter's rows, or its columns when transposed) by kc taps
 * along them, made odd (an even width gets a zero tap); 0 for a window they do not take. */
static inline int32_t dwk_lines(const tm_dims *filter_dims, const tm_dims *output_dims)
{
    if (!tm_dims_ok(filter_dims) || !tm_dims_ok(output_dims) || filter_dims->h < 2 || filter_dims->h > TM_DWK_MAX ||
        filter_dims->w < 2 || filter_dims->w > TM_DWK_MAX) {
        return 0;
    }
    return dw_transposed(output_dims) ? filter_dims->w : filter_dims->h;
}

static inline int32_t dwk_taps(const tm_dims *filter_dims, const tm_dims *output_dims)
{
    return (dw_transposed(output_dims) ? filter_dims->h : filter_dims->w) | 1;
}

static inline int32_t dw_scratch_bytes(const tm_dims *input_dims, const tm_dims *output_dims, int32_t stride,
                                       int32_t kr, int32_t kc, int32_t scratch_budget)
{
    if (!tm_dims_ok(input_dims) || !tm_dims_ok(output_dims) || kr == 0) {
        return 0;
    }
    return dw_plan(output_dims, stride, kr, kc, scratch_budget).bytes;
}

/* The lines are read as words: single int16 values go in through memcpy, which may alias anything. */
static inline void dw_store_s16(int16_t *p, int32_t v)
{
    const int16_t h = (int16_t)v;
    memcpy(p, &h, 2);
}

/* One input pixel's `channels` values into position 0 of lines `line_step` apart (four channels per word
 * read, as the pairs below). */
static void dw_widen_column(int16_t *dst, int32_t line_step, const int8_t *in, int32_t channels,
                            int32_t input_offset, uint32_t offset2)
{
    int32_t c = 0;
    for (; c + 4 <= channels; c += 4) {
        const uint32_t v = tm_load_u32(in + c);
        const uint32_t even = tm_sxtab16(offset2, v), odd = tm_sxtab16_ror8(offset2, v);
        int16_t *d = dst + c * line_step;
        dw_store_s16(d, (int32_t)even);
        dw_store_s16(d + line_step, (int32_t)odd);
        dw_store_s16(d + 2 * line_step, (int32_t)(even >> 16));
        dw_store_s16(d + 3 * line_step, (int32_t)(odd >> 16));
    }
    for (; c < channels; ++c) {
        dw_store_s16(dst + c * line_step, in[c] + input_offset);
    }
}

/* dw_widen_row for groups of 1-3 channels (small plane budgets): channel by channel, two pixels per stored
 * word, instead of the four-channel words below, whose per-pixel set-up would dominate. */
static void dw_widen_narrow(int16_t *lines, int32_t line_step, const int8_t *row, int32_t pixel_step,
                            int32_t channels, int32_t cols, int32_t pad_left, int32_t input_offset)
{
    for (int32_t c = 0; c < channels; ++c) {
        int16_t *dst = lines + c * line_step + pad_left;
        const int8_t *src = row + c;
        int32_t n = cols;
        if ((pad_left & 1) && n > 0) { /* the words below start at an even position */
            dw_store_s16(dst, src[0] + input_offset);
            dst += 1;
            src += pixel_step;
            n -= 1;
        }
        uint32_t *d = (uint32_t *)(void *)dst;
        for (int32_t k = n >> 1; k > 0; --k) {
            const int32_t v0 = src[0] + input_offset, v1 = src[pixel_step] + input_offset;
            *d++ = tm_pack_lo16((uint32_t)v0, (uint32_t)v1);
            src += 2 * pixel_step;
        }
        if (n & 1) {
            dw_store_s16((int16_t *)(void *)d, src[0] + input_offset);
        }
    }
}

/* One input row of `channels` channels (from `row`, pixels `pixel_step` bytes apart) into lines `line_step`
 * apart: line[c][pad_left + x] = row[x][c] + input_offset for the `cols` columns that fit. The lines'
 * padding columns are never written: they stay 0 from the start of the call. */
static void dw_widen_row(int16_t *lines, int32_t line_step, const int8_t *row, int32_t pixel_step,
                         int32_t channels, int32_t cols, int32_t pad_left, int32_t input_offset)
{
    if (channels < 4) {
        dw_widen_narrow(lines, line_step, row, pixel_step, channels, cols, pad_left, input_offset);
        return;
    }
    /* Both lanes get the offset: SXTAB16 adds it while sign-extending (x + offset fits int16). */
    const uint32_t offset2 = ((uint32_t)input_offset & 0xFFFFu) * 0x10001u;
    int16_t *dst = lines + pad_left;
    int32_t x = 0;
    if ((pad_left & 1) && cols > 0) { /* the pairs below store words: start them at an even position */
        dw_widen_column(dst, line_step, row, channels, input_offset, offset2);
        x = 1;
    }
    for (; x + 2 <= cols; x += 2) {
        const int8_t *a = row + x * pixel_step;
        uint32_t *d = (uint32_t *)(void *)(dst + x);
        const int32_t step = line_step / 2; /* words from one line to the next */
        int32_t c = 0;
        for (; c + 4 <= channels; c += 4) {
            const uint32_t in0 = tm_load_u32(a + c), in1 = tm_load_u32(a + pixel_step + c);
            const uint32_t even0 = tm_sxtab16(offset2, in0), odd0 = tm_sxtab16_ror8(offset2, in0);
            const uint32_t even1 = tm_sxtab16(offset2, in1), odd1 = tm_sxtab16_ror8(offset2, in1);
            d[0] = tm_pack_lo16(even0, even1);
            d[step] = tm_pack_lo16(odd0, odd1);
            d[2 * step] = tm_pack_hi16(even1, even0);
            d[3 * step] = tm_pack_hi16(odd1, odd0);
            d += 4 * step;
        }
        for (; c < channels; ++c) {
            dw_store_s16(dst + x + c * line_step, a[c] + input_offset);
            dw_store_s16(dst + x + c * line_step + 1, a[pixel_step + c] + input_offset);
        }
    }
    if (x < cols) {
        dw_widen_column(dst + x, line_step, row + x * pixel_step, channels, input_offset, offset2);
    }
}

/* requantize(acc) + output_offset, from 2*acc: SMMLAR gives SaturatingRoundingDoublingHighMul plus the
 * folded 2^(e-1) + output_offset * 2^e; adding the sign bit and shifting right by e is RoundingDivideByPOT
 * (ties away from zero). The sign of acc stands for the sign of the high product: they differ only when
 * that product is 0, where both give output_offset. */
static inline int32_t dw_output(int32_t acc2, int32_t multiplier, int32_t rounding, int32_t e, int32_t lo,
                                int32_t hi, const int full_range)
{
    const int32_t v = (tm_smmlar(acc2, multiplier, rounding) + (acc2 >> 31)) >> e;
    return full_range ? tm_ssat(v, 8) : tm_clamp(v, lo, hi);
}

/* `n_rows` output rows of one channel. Output row k reads the lines l0, l1, l2 (its window's three input
 * rows) moved on by k * row_step, and writes every `out_col` bytes from out + k * out_step. Two outputs per
 * step; their three taps of a filter row (i0..i5 the line values from the step's first column,
 * a = {w0, w1}, b = {w1, w2}):
 *   stride 1: out0 = w0 i0 + w1 i1 + w2 i2 = SMLAD({i0,i1}, a) + SMLABT({i2,i3}, b)
 *             out1 = w0 i1 + w1 i2 + w2 i3 = SMLATB({i0,i1}, a) + SMLAD({i2,i3}, b)
 *   stride 2: out0 = SMLAD({i0,i1}, a) + SMLABT({i2,i3}, b), out1 = SMLAD({i2,i3}, a) + SMLABT({i4,i5}, b)
 * Six MACs in four instructions. */
static inline void dw_channel(const int16_t *l0, const int16_t *l1, const int16_t *l2, int32_t row_step,
                              int32_t n_rows, const int32_t *pk, int8_t *out, int32_t out_step, int32_t out_col,
                              int32_t w_out, int32_t lo, int32_t hi, const int stride, const int full_range)
{
    const uint32_t a0 = (uint32_t)pk[0], b0 = (uint32_t)pk[1], a1 = (uint32_t)pk[2], b1 = (uint32_t)pk[3];
    const uint32_t a2 = (uint32_t)pk[4], b2 = (uint32_t)pk[5];
    const int32_t init = pk[6], multiplier = pk[7], rounding = pk[8], e = pk[9];
    for (int32_t k = 0; k < n_rows; ++k) {
        const uint32_t *r0 = (const uint32_t *)(const void *)(l0 + k * row_step);
        const uint32_t *r1 = (const uint32_t *)(const void *)(l1 + k * row_step);
        const uint32_t *r2 = (const uint32_t *)(const void *)(l2 + k * row_step);
        int8_t *o = out + k * out_step;
        for (int32_t n = w_out >> 1; n > 0; --n) {
            int32_t acc0 = init, acc1 = init;
            if (stride == 1) {
                const uint32_t p00 = r0[0], p01 = r0[1], p10 = r1[0], p11 = r1[1], p20 = r2[0], p21 = r2[1];
                acc0 = tm_smlad(p00, a0, acc0);
                acc1 = tm_smlatb(p00, a0, acc1);
                acc0 = tm_smlabt(p01, b0, acc0);
                acc1 = tm_smlad(p01, b0, acc1);
                acc0 = tm_smlad(p10, a1, acc0);
                acc1 = tm_smlatb(p10, a1, acc1);
                acc0 = tm_smlabt(p11, b1, acc0);
                acc1 = tm_smlad(p11, b1, acc1);
                acc0 = tm_smlad(p20, a2, acc0);
                acc1 = tm_smlatb(p20, a2, acc1);
                acc0 = tm_smlabt(p21, b2, acc0);
                acc1 = tm_smlad(p21, b2, acc1);
                r0 += 1;
                r1 += 1;
                r2 += 1;
            } else {
                const uint32_t p00 = r0[0], p01 = r0[1], p02 = r0[2];
                const uint32_t p10 = r1[0], p11 = r1[1], p12 = r1[2];
                const uint32_t p20 = r2[0], p21 = r2[1], p22 = r2[2];
                acc0 = tm_smlad(p00, a0, acc0);
                acc1 = tm_smlad(p01, a0, acc1);
                acc0 = tm_smlabt(p01, b0, acc0);
                acc1 = tm_smlabt(p02, b0, acc1);
                acc0 = tm_smlad(p10, a1, acc0);
                acc1 = tm_smlad(p11, a1, acc1);
                acc0 = tm_smlabt(p11, b1, acc0);
                acc1 = tm_smlabt(p12, b1, acc1);
                acc0 = tm_smlad(p20, a2, acc0);
                acc1 = tm_smlad(p21, a2, acc1);
                acc0 = tm_smlabt(p21, b2, acc0);
                acc1 = tm_smlabt(p22, b2, acc1);
                r0 += 2;
                r1 += 2;
                r2 += 2;
            }
            o[0] = (int8_t)dw_output(acc0, multiplier, rounding, e, lo, hi, full_range);
            o[out_col] = (int8_t)dw_output(acc1, multiplier, rounding, e, lo, hi, full_range);
            o += 2 * out_col;
        }
        if (w_out & 1) { /* the last output: stride 1 or 2, it starts on a word */
            int32_t acc0 = tm_smlad(r0[0], a0, init);
            acc0 = tm_smlabt(r0[1], b0, acc0);
            acc0 = tm_smlad(r1[0], a1, acc0);
            acc0 = tm_smlabt(r1[1], b1, acc0);
            acc0 = tm_smlad(r2[0], a2, acc0);
            acc0 = tm_smlabt(r2[1], b2, acc0);
            o[0] = (int8_t)dw_output(acc0, multiplier, rounding, e, lo, hi, full_range);
        }
    }
}

/* Two outputs (columns 2n, 2n + 1 of a row) of one filter row of 2M + 1 taps w0 .. w2M, from the line words p
 * (p[0] holds the first output's first input and the next), in the packed pairs w: A_j = {w2j, w2j+1} and
 * B_j+1 = {w2j+1, w2j+2} alternating (A_0, B_1, A_1, .., B_M). With P_j the j-th word of the window:
 *   stride 1: out0 = sum_j SMLAD(P_j, A_j) + SMLABT(P_M, B_M)
 *             out1 = SMLATB(P_0, A_0) + sum_j SMLAD(P_j+1, B_j+1)
 *   stride 2: out1 is out0 one word on.
 * 2 (2M + 1) MACs in 2M + 2 instructions. */
static inline __attribute__((always_inline)) void dwk_row(const uint32_t *p, const uint32_t *w, int32_t *acc0,
                                                           int32_t *acc1, const int M, const int stride)
{
    int32_t s0 = *acc0, s1 = *acc1;
    if (stride == 1) {
        uint32_t cur = p[0];
        s1 = tm_smlatb(cur, w[0], s1);
        for (int j = 0; j < M; ++j) {
            const uint32_t next = p[j + 1];
            s0 = tm_smlad(cur, w[2 * j], s0);
            s1 = tm_smlad(next, w[2 * j + 1], s1);
            cur = next;
        }
        s0 = tm_smlabt(cur, w[2 * M - 1], s0);
    } else {
        for (int j = 0; j < M; ++j) {
            s0 = tm_smlad(p[j], w[2 * j], s0);
            s1 = tm_smlad(p[j + 1], w[2 * j], s1);
        }
        s0 = tm_smlabt(p[M], w[2 * M - 1], s0);
        s1 = tm_smlabt(p[M + 1], w[2 * M - 1], s1);
    }
    *acc0 = s0;
    *acc1 = s1;
}

/* dw_channel for a window of kr lines by 2M + 1 taps: lines[r] + offset is line r of the first output row, the
 * packed weights are 2M words per line (dwk_row) then the 4 words of the requantization; the weights are read
 * from memory per step (20 or more words: more than the registers). */
static inline __attribute__((always_inline)) void dwk_channel(const int16_t *const *lines, int32_t offset,
                                                               int32_t row_step, int32_t n_rows, int32_t kr,
                                                               const int32_t *pk, int8_t *out, int32_t out_step,
                                                               int32_t out_col, int32_t w_out, int32_t lo,
                                                               int32_t hi, const int M, const int stride)
{
    const int32_t *req = pk + kr * 2 * M;
    const int32_t init = req[0], multiplier = req[1], rounding = req[2], e = req[3];
    for (int32_t k = 0; k < n_rows; ++k) {
        const int32_t base = offset + k * row_step;
        int8_t *o = out + k * out_step;
        for (int32_t x = 0; x < w_out; x += 2) {
            int32_t acc0 = init, acc1 = init;
            const uint32_t *w = (const uint32_t *)(const void *)pk;
            for (int32_t r = 0; r < kr; ++r) {
                dwk_row((const uint32_t *)(const void *)(lines[r] + base + stride * x), w, &acc0, &acc1, M, stride);
                w += 2 * M;
            }
            o[0] = (int8_t)dw_output(acc0, multiplier, rounding, e, lo, hi, 0);
            if (x + 1 < w_out) { /* an odd width: the pair's second output lies past the row */
                o[out_col] = (int8_t)dw_output(acc1, multiplier, rounding, e, lo, hi, 0);
            }
            o += 2 * out_col;
        }
    }
}

typedef void (*dw_channel_fn)(const int16_t *l0, const int16_t *l1, const int16_t *l2, int32_t row_step,
                              int32_t n_rows, const int32_t *pk, int8_t *out, int32_t out_step, int32_t out_col,
                              int32_t w_out, int32_t lo, int32_t hi);

/* The KxK channel functions: lines[r] + offset is line r (of kr) of the first output row's window. */
typedef void (*dwk_channel_fn)(const int16_t *const *lines, int32_t offset, int32_t row_step, int32_t n_rows,
                               int32_t kr, const int32_t *pk, int8_t *out, int32_t out_step, int32_t out_col,
                               int32_t w_out, int32_t lo, int32_t hi);

/* One function per (stride, clamp) or (window width, stride), so that GCC specialises the loops for their
 * constants (it would not inline one shared worker into every caller). */
#define DW_CHANNEL(name, stride, full_range)                                                                     \
    static void name(const int16_t *l0, const int16_t *l1, const int16_t *l2, int32_t row_step, int32_t n_rows,  \
                     const int32_t *pk, int8_t *out, int32_t out_step, int32_t out_col, int32_t w_out,           \
                     int32_t lo, int32_t hi)                                                                     \
    {                                                                                                            \
        dw_channel(l0, l1, l2, row_step, n_rows, pk, out, out_step, out_col, w_out, lo, hi, stride, full_range);  \
    }

DW_CHANNEL(dw_channel_s1, 1, 0)
DW_CHANNEL(dw_channel_s1_sat, 1, 1)
DW_CHANNEL(dw_channel_s2, 2, 0)
DW_CHANNEL(dw_channel_s2_sat, 2, 1)

#define DWK_CHANNEL(name, M, stride)                                                                             \
    static void name(const int16_t *const *lines, int32_t offset, int32_t row_step, int32_t n_rows, int32_t kr,  \
                     const int32_t *pk, int8_t *out, int32_t out_step, int32_t out_col, int32_t w_out,           \
                     int32_t lo, int32_t hi)                                                                     \
    {                                                                                                            \
        dwk_channel(lines, offset, row_step, n_rows, kr, pk, out, out_step, out_col, w_out, lo, hi, M, stride);  \
    }

DWK_CHANNEL(dwk_channel_3_s1, 1, 1)
DWK_CHANNEL(dwk_channel_5_s1, 2, 1)
DWK_CHANNEL(dwk_channel_7_s1, 3, 1)
DWK_CHANNEL(dwk_channel_3_s2, 1, 2)
DWK_CHANNEL(dwk_channel_5_s2, 2, 2)
DWK_CHANNEL(dwk_channel_7_s2, 3, 2)

/* What both layouts need of the layer, in line terms: "rows" across the lines, "columns" along them (the
 * image's rows and columns, or its columns and rows for a transposed layer). Steps are in bytes. */
typedef struct {
    int32_t rows_in, cols, pad_row, pad_col, in_row_step, in_col_step;
    int32_t rows_out, cols_out, out_row_step, out_col_step;
    int32_t channels, input_offset, lo, hi, stride;
    int32_t kr, kc, words; /* the window in lines and taps along them, packed words per channel */
    dw_channel_fn channel;   /* the 3x3 variants' */
    dwk_channel_fn channelk; /* the KxK variants' */
} dw_layer;

/* Both variants' layouts are one code with a constant KXK (the KxK variants or the 3x3 ones), specialised per
 * driver, so that the 3x3 channel calls keep their three line pointers. */
#define DW_ALWAYS_INLINE static inline __attribute__((always_inline))

/* Narrow images: each channel group's planes, then each channel down the whole output. */
DW_ALWAYS_INLINE void dw_planes(const dw_layer *L, const dw_layout *lay, int16_t *scratch, const int32_t *packed,
                                const int8_t *input, int8_t *output, const int KXK)
{
    const int32_t plane = lay->rows * lay->lw;
    const int16_t *lines[TM_DWK_MAX];
    for (int32_t r = 0; KXK && r < L->kr; ++r) {
        lines[r] = scratch + r * lay->lw;
    }
    for (int32_t c0 = 0; c0 < L->channels; c0 += lay->group) {
        const int32_t group = L->channels - c0 < lay->group ? L->channels - c0 : lay->group;
        for (int32_t i = 0; i < L->rows_in; ++i) {
            const int32_t r = i + L->pad_row;
            if (r < lay->rows) {
                dw_widen_row(scratch + r * lay->lw, plane, input + i * L->in_row_step + c0, L->in_col_step, group,
                             L->cols, L->pad_col, L->input_offset);
            }
        }
        for (int32_t c = 0; c < group; ++c) {
            if (KXK) {
                L->channelk(lines, c * plane, L->stride * lay->lw, L->rows_out, L->kr, packed + (c0 + c) * L->words,
                            output + c0 + c, L->out_row_step, L->out_col_step, L->cols_out, L->lo, L->hi);
            } else {
                const int16_t *l0 = scratch + c * plane;
                L->channel(l0, l0 + lay->lw, l0 + 2 * lay->lw, L->stride * lay->lw, L->rows_out,
                           packed + (c0 + c) * TM_DW3X3_WORDS, output + c0 + c, L->out_row_step, L->out_col_step,
                           L->cols_out, L->lo, L->hi);
            }
        }
    }
}

/* Wide images: input row i lives in ring slot i mod kr; consecutive output rows share kr - stride of their
 * kr rows, which are widened once. */
DW_ALWAYS_INLINE void dw_ring(const dw_layer *L, const dw_layout *lay, int16_t *scratch, const int32_t *packed,
                              const int8_t *input, int8_t *output, const int KXK)
{
    const int32_t slot_size = L->channels * lay->lw, kr = KXK ? L->kr : 3;
    int32_t key[TM_DWK_MAX];
    for (int32_t k = 0; k < kr; ++k) {
        key[k] = DW_ZERO_ROW;
    }
    for (int32_t o = 0; o < L->rows_out; ++o) {
        const int32_t i0 = o * L->stride - L->pad_row;
        const int16_t *rows[TM_DWK_MAX];
        for (int32_t k = 0; k < kr; ++k) {
            const int32_t i = i0 + k, m = i % kr, s = m < 0 ? m + kr : m;
            const int32_t want = i >= 0 && i < L->rows_in ? i : DW_ZERO_ROW;
            int16_t *slot = scratch + s * slot_size;
            if (key[s] != want) {
                if (want == DW_ZERO_ROW) {
                    memset(slot, 0, (size_t)slot_size * 2u);
                } else {
                    dw_widen_row(slot, lay->lw, input + i * L->in_row_step, L->in_col_step, L->channels, L->cols,
                                 L->pad_col, L->input_offset);
                }
                key[s] = want;
            }
            rows[k] = slot;
        }
        int8_t *const out = output + o * L->out_row_step;
        for (int32_t c = 0; c < L->channels; ++c) {
            if (KXK) {
                L->channelk(rows, c * lay->lw, 0, 1, kr, packed + c * L->words, out + c, 0, L->out_col_step,
                            L->cols_out, L->lo, L->hi);
            } else {
                const int32_t line = c * lay->lw;
                L->channel(rows[0] + line, rows[1] + line, rows[2] + line, 0, 1, packed + c * TM_DW3X3_WORDS,
                           out + c, 0, L->out_col_step, L->cols_out, L->lo, L->hi);
            }
        }
    }
}

/* Both variants' driver: kr x kc is the window in line terms (3 x 3, or from dwk_lines / dwk_taps), `channel`
 * (3x3) or `channelk` (KxK, KXK set) the specialised channel function (NULL: none for this shape). */
DW_ALWAYS_INLINE tm_status dw_run(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                  const int32_t *packed, int32_t scratch_budget, const tm_dims *input_dims,
                                  const int8_t *input, const tm_dims *output_dims, int8_t *output, int32_t stride,
                                  int32_t kr, int32_t kc, dw_channel_fn channel, dwk_channel_fn channelk,
                                  const int KXK)
{
    if (params == NULL || packed == NULL || input == NULL || output == NULL || ctx == NULL ||
        (KXK ? channelk == NULL : channel == NULL) ||
        kr < 1 || kr > TM_DWK_MAX || !tm_dims_ok(input_dims) || !tm_dims_ok(output_dims) ||
        output_dims->n != input_dims->n || output_dims->c != input_dims->c || params->ch_mult != 1 ||
        params->stride.h != stride || params->stride.w != stride || params->dilation.h != 1 ||
        params->dilation.w != 1 || params->padding.h < 0 || params->padding.w < 0 ||
        !tm_activation_ok(&params->activation)) {
        return TM_ARG_ERROR;
    }
    const dw_layout lay = dw_plan(output_dims, stride, kr, kc, scratch_budget);
    if (ctx->buf == NULL || ctx->size < lay.bytes || ((uintptr_t)ctx->buf & 3u) != 0) {
        return TM_ARG_ERROR;
    }
    const int32_t words = kr * (kc - 1) + 4; /* TM_DW3X3_WORDS for 3 x 3 */
    for (int32_t c = 0; c < output_dims->c; ++c) {
        const int32_t e = packed[c * words + words - 1];
        if (e < 1 || e > 31) {
            return TM_ARG_ERROR;
        }
    }

    const int32_t channels = input_dims->c;
    const int32_t in_pixel = channels, in_line = input_dims->w * channels;
    const int32_t out_pixel = channels, out_line = output_dims->w * channels;
    const int t = dw_transposed(output_dims);
    dw_layer L;
    L.rows_in = t ? input_dims->w : input_dims->h;
    const int32_t cols_in = t ? input_dims->h : input_dims->w;
    L.pad_row = t ? params->padding.w : params->padding.h;
    L.pad_col = t ? params->padding.h : params->padding.w;
    /* Input columns past the lines are read by no output. */
    L.cols = L.pad_col >= lay.lw ? 0 : (cols_in < lay.lw - L.pad_col ? cols_in : lay.lw - L.pad_col);
    L.in_row_step = t ? in_pixel : in_line;
    L.in_col_step = t ? in_line : in_pixel;
    L.rows_out = t ? output_dims->w : output_dims->h;
    L.cols_out = t ? output_dims->h : output_dims->w;
    L.out_row_step = t ? out_pixel : out_line;
    L.out_col_step = t ? out_line : out_pixel;
    L.channels = channels;
    L.input_offset = params->input_offset;
    L.lo = params->activation.min;
    L.hi = params->activation.max;
    L.stride = stride;
    L.kr = kr;
    L.kc = kc;
    L.words = words;
    L.channel = channel;
    L.channelk = channelk;

    int16_t *const scratch = (int16_t *)ctx->buf;
    const int32_t in_batch = input_dims->h * in_line, out_batch = output_dims->h * out_line;
    for (int32_t b = 0; b < input_dims->n; ++b) {
        memset(scratch, 0, (size_t)lay.bytes); /* the padding: rows and columns no input row writes */
        if (lay.group > 0) {
            dw_planes(&L, &lay, scratch, packed, input + b * in_batch, output + b * out_batch, KXK);
        } else {
            dw_ring(&L, &lay, scratch, packed, input + b * in_batch, output + b * out_batch, KXK);
        }
    }
    return TM_OK;
}

__attribute__((noinline)) static tm_status dw_3x3(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                                  const int32_t *packed, int32_t scratch_budget,
                                                  const tm_dims *input_dims, const int8_t *input,
                                                  const tm_dims *output_dims, int8_t *output, int32_t stride)
{
    if (params == NULL) {
        return TM_ARG_ERROR;
    }
    /* Without a narrower activation the clamp is one SSAT. */
    const int full_range = params->activation.min == -128 && params->activation.max == 127;
    const dw_channel_fn channel = stride == 1 ? (full_range ? dw_channel_s1_sat : dw_channel_s1)
                                              : (full_range ? dw_channel_s2_sat : dw_channel_s2);
    return dw_run(ctx, params, packed, scratch_budget, input_dims, input, output_dims, output, stride, 3, 3,
                  channel, NULL, 0);
}

tm_status tm_depthwise_conv2d_s8_dsp_3x3s1(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                           const int32_t *packed, int32_t scratch_budget,
                                           const tm_dims *input_dims, const int8_t *input,
                                           const tm_dims *output_dims, int8_t *output)
{
    return dw_3x3(ctx, params, packed, scratch_budget, input_dims, input, output_dims, output, 1);
}

int32_t tm_depthwise_conv2d_s8_dsp_3x3s1_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                                         const tm_dims *output_dims, int32_t scratch_budget)
{
    (void)filter_dims;
    return dw_scratch_bytes(input_dims, output_dims, 1, 3, 3, scratch_budget);
}

tm_status tm_depthwise_conv2d_s8_dsp_3x3s2(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                           const int32_t *packed, int32_t scratch_budget,
                                           const tm_dims *input_dims, const int8_t *input,
                                           const tm_dims *output_dims, int8_t *output)
{
    return dw_3x3(ctx, params, packed, scratch_budget, input_dims, input, output_dims, output, 2);
}

int32_t tm_depthwise_conv2d_s8_dsp_3x3s2_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                                         const tm_dims *output_dims, int32_t scratch_budget)
{
    (void)filter_dims;
    return dw_scratch_bytes(input_dims, output_dims, 2, 3, 3, scratch_budget);
}

/* The KxK variants: one entry point per stride, so that a model links only the channel functions it runs. */
__attribute__((noinline)) static tm_status dw_kxk(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                                  const int32_t *packed, int32_t scratch_budget,
                                                  const tm_dims *input_dims, const int8_t *input,
                                                  const tm_dims *filter_dims, const tm_dims *output_dims,
                                                  int8_t *output, int32_t stride, const dwk_channel_fn by_taps[3])
{
    if (!tm_dims_ok(output_dims)) {
        return TM_ARG_ERROR;
    }
    const int32_t kr = dwk_lines(filter_dims, output_dims);
    if (kr == 0 || filter_dims->n != 1 || filter_dims->c != output_dims->c) {
        return TM_ARG_ERROR;
    }
    const int32_t kc = dwk_taps(filter_dims, output_dims);
    return dw_run(ctx, params, packed, scratch_budget, input_dims, input, output_dims, output, stride, kr, kc, NULL,
                  by_taps[(kc - 3) / 2], 1);
}

tm_status tm_depthwise_conv2d_s8_dsp_kxks1(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                           const int32_t *packed, int32_t scratch_budget,
                                           const tm_dims *input_dims, const int8_t *input,
                                           const tm_dims *filter_dims, const tm_dims *output_dims,
                                           int8_t *output)
{
    static const dwk_channel_fn by_taps[3] = {dwk_channel_3_s1, dwk_channel_5_s1, dwk_channel_7_s1};
    return dw_kxk(ctx, params, packed, scratch_budget, input_dims, input, filter_dims, output_dims, output, 1,
                  by_taps);
}

int32_t tm_depthwise_conv2d_s8_dsp_kxks1_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                                         const tm_dims *output_dims, int32_t scratch_budget)
{
    const int32_t kr = dwk_lines(filter_dims, output_dims);
    return kr ? dw_scratch_bytes(input_dims, output_dims, 1, kr, dwk_taps(filter_dims, output_dims), scratch_budget)
              : 0;
}

tm_status tm_depthwise_conv2d_s8_dsp_kxks2(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                           const int32_t *packed, int32_t scratch_budget,
                                           const tm_dims *input_dims, const int8_t *input,
                                           const tm_dims *filter_dims, const tm_dims *output_dims,
                                           int8_t *output)
{
    static const dwk_channel_fn by_taps[3] = {dwk_channel_3_s2, dwk_channel_5_s2, dwk_channel_7_s2};
    return dw_kxk(ctx, params, packed, scratch_budget, input_dims, input, filter_dims, output_dims, output, 2,
                  by_taps);
}

int32_t tm_depthwise_conv2d_s8_dsp_kxks2_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                                         const tm_dims *output_dims, int32_t scratch_budget)
{
    const int32_t kr = dwk_lines(filter_dims, output_dims);
    return kr ? dw_scratch_bytes(input_dims, output_dims, 2, kr, dwk_taps(filter_dims, output_dims), scratch_budget)
              : 0;
}
