/*
 * CONV_2D (int8, groups == 1) with the DSP extension, bit-exact with LiteRT's
 * reference_integer_ops::ConvPerChannel. Layouts and the folded bias: tm_conv2d_s8.h.
 */
#include "tm_nn.h"
#include "tm_support.h"
#include "tm_simd.h"
#include "tm_conv2d_s8.h"

/* Scratch layout of the two int16 columns: per group of 4 depth values, 4 words
 * {pixel 0: (x0, x2), (x1, x3); pixel 1: (x0, x2), (x1, x3)} - the lane order SXTB16 gives, so one
 * word of int8 filter widened by SXTB16 / SXTB16 ROR 8 lines up with them without any repacking. */
#define TM_COLUMN_WORDS_PER_GROUP 4

static inline int32_t tm_padded_depth(const tm_dims *filter_dims)
{
    return (filter_dims->h * filter_dims->w * filter_dims->c + 3) & ~3;
}

/* Widens `groups` words of int8 into pixel slot `slot` of the int16 columns. */
static inline void tm_widen_column(const int8_t *src, int32_t groups, uint32_t *columns, int32_t slot)
{
    uint32_t *dst = columns + 2 * slot;
    for (int32_t g = 0; g < groups; ++g) {
        const uint32_t v = tm_load_u32(src);
        src += 4;
        dst[0] = tm_sxtb16(v);
        dst[1] = tm_sxtb16_ror8(v);
        dst += TM_COLUMN_WORDS_PER_GROUP;
    }
}

/* As tm_widen_column for `depth` bytes that need not fill the last word (the rest reads as 0), never
 * reading past src[depth - 1]. */
static inline void tm_widen_column_tail(const int8_t *src, int32_t depth, uint32_t *columns, int32_t slot)
{
    const int32_t full = depth >> 2;
    tm_widen_column(src, full, columns, slot);
    const int32_t rest = depth & 3;
    if (rest != 0) {
        uint32_t v = 0;
        for (int32_t i = 0; i < rest; ++i) {
            v |= (uint32_t)(uint8_t)src[4 * full + i] << (8 * i);
        }
        uint32_t *dst = columns + TM_COLUMN_WORDS_PER_GROUP * full + 2 * slot;
        dst[0] = tm_sxtb16(v);
        dst[1] = tm_sxtb16_ror8(v);
    }
}

/* requantize(x, multiplier, -e) for e >= 2 in one 64-bit multiply-accumulate, exactly TFLite's double
 * rounding: with s = SRDHM(x, m) = floor((x*m + 2^30) / 2^31) and RDBP(s, e) = floor((s + 2^(e-1) - [s < 0])
 * / 2^e), nested floors give floor((x*m + 2^30 + 2^(30+e) - 2^31*[s < 0]) / 2^(31+e)). [s < 0] may be
 * replaced by [x < 0] (multiplier >= 0): where they differ, x*m lies in [-2^30, 0) and both give 0.
 * For e >= 2 the added constant is (high word 2^(e-2) + (x >> 31), low word 2^30 | (x & 2^31)) without a
 * carry between the words, and the result is the high word of the sum shifted right by e - 1. SRDHM's
 * saturation needs x = m = INT32_MIN, impossible with multiplier >= 0. */
/* Whether the table's rescale words are valid (tm_conv2d_s8.h): every channel's shift in
 * [-TM_CONV_FAST_MAX_E, -2]. The compiler applies the same rule when it fills them. */
static int tm_fast_rescale(const tm_quant *quant, int32_t channels)
{
    for (int32_t c = 0; c < channels; ++c) {
        if (quant->shift[c] > -2 || quant->shift[c] < -TM_CONV_FAST_MAX_E) {
            return 0;
        }
    }
    return 1;
}

/* The form above with the output offset folded into the high word as well: high = 2^(e-2) + offset * 2^(e-1)
 * adds exactly `offset` after the final shift by e - 1. The true high word of the sum is below
 * 2^30 + 129 * 2^(e-1) in magnitude (|x * m| < 2^62), which fits int32 for e <= 23 (TM_CONV_FAST_MAX_E = 22),
 * so the wrapped 32-bit words give the exact result. Then SSAT to int8 and the activation clamps that
 * the call needs (clamp_lo / clamp_hi are constants after inlining). */
static TM_ALWAYS_INLINE int32_t tm_fast_output(int32_t x, int32_t multiplier, int32_t high, int32_t e_minus_1,
                                               int clamp_lo, int clamp_hi, int32_t act_min, int32_t act_max)
{
    const uint32_t low = ((uint32_t)x & 0x80000000u) | 0x40000000u;
    const uint32_t h = (uint32_t)high + (uint32_t)(x >> 31);
    const int64_t v = (int64_t)(((uint64_t)h << 32) | low) + (int64_t)x * multiplier;
    int32_t r = tm_ssat((int32_t)(v >> 32) >> e_minus_1, 8);
    if (clamp_lo && r < act_min) {
        r = act_min;
    }
    if (clamp_hi && r > act_max) {
        r = act_max;
    }
    return r;
}

/* The general requantization (any shift), for layers the fast form does not cover. */
static inline int8_t tm_output_value(int32_t acc, int32_t multiplier, int32_t shift, int32_t output_offset,
                                     int32_t act_min, int32_t act_max)
{
    int32_t v = tm_ssat(tm_wrapping_add(tm_requantize(acc, multiplier, shift), output_offset), 8);
    v = v < act_min ? act_min : v;
    return (int8_t)(v > act_max ? act_max : v);
}

/* Output values shared by the GEMM of one block. */
typedef struct {
    const int8_t *filter;
    const int32_t *table; /* 8 words per channel pair, tm_conv2d_s8.h */
    const int32_t *multiplier;
    const int32_t *shift;
    int32_t groups;   /* padded_depth / 4 */
    int32_t channels; /* c_out (the packed filter has it rounded up to even) */
    int32_t output_offset, act_min, act_max;
} tm_gemm_args;

#if TM_HAVE_DSP
/* One group of 4 depth values for 2 pixels x 2 channels: LDRD the two filter words and each pixel's two
 * column words with post-increment, widen the filter with SXTB16 (lanes 0,2) / SXTB16 ROR 8 (lanes 1,3),
 * 8 SMLADs: 15 instructions for 16 MACs. Written out because GCC 12 neither folds the pointer increments
 * into the loads nor keeps all 13 values in registers. */
#define TM_MAC_GROUP                                         \
    "ldrd %[wa], %[wb], [%[w]], #8\n\t"                      \
    "ldrd %[x0], %[x1], [%[col]], #8\n\t"                    \
    "sxtb16 %[t0], %[wa]\n\t"                                \
    "sxtb16 %[wa], %[wa], ror #8\n\t"                        \
    "sxtb16 %[t1], %[wb]\n\t"                                \
    "sxtb16 %[wb], %[wb], ror #8\n\t"                        \
    "smlad %[a00], %[x0], %[t0], %[a00]\n\t"                 \
    "smlad %[a01], %[x0], %[t1], %[a01]\n\t"                 \
    "smlad %[a00], %[x1], %[wa], %[a00]\n\t"                 \
    "smlad %[a01], %[x1], %[wb], %[a01]\n\t"                 \
    "ldrd %[x0], %[x1], [%[col]], #8\n\t"                    \
    "smlad %[a10], %[x0], %[t0], %[a10]\n\t"                 \
    "smlad %[a11], %[x0], %[t1], %[a11]\n\t"                 \
    "smlad %[a10], %[x1], %[wa], %[a10]\n\t"                 \
    "smlad %[a11], %[x1], %[wb], %[a11]\n\t"

#define TM_MAC_OPERANDS                                                                                   \
    [a00] "+r"(acc[0]), [a01] "+r"(acc[1]), [a10] "+r"(acc[2]), [a11] "+r"(acc[3]), [w] "+r"(w),        \
    [col] "+r"(col), [wa] "=&r"(wa), [wb] "=&r"(wb), [t0] "=&r"(t0), [t1] "=&r"(t1), [x0] "=&r"(x0),     \
    [x1] "=&r"(x1)

/* 2 pixels x 2 channels over `groups` groups; returns the filter of the next channel pair. */
static inline const int8_t *tm_mac_2x2(const int8_t *w, const uint32_t *col, int32_t groups, int32_t acc[4])
{
    uint32_t wa, wb, t0, t1, x0, x1;
    if (groups & 1) {
        __asm__ volatile(TM_MAC_GROUP : TM_MAC_OPERANDS : : "memory");
    }
    int32_t pairs = groups >> 1;
    if (pairs != 0) {
        __asm__ volatile("1:\n\t" TM_MAC_GROUP TM_MAC_GROUP "subs %[n], %[n], #1\n\t"
                         "bne 1b\n\t"
                         : TM_MAC_OPERANDS, [n] "+r"(pairs) : : "cc", "memory");
    }
    return w;
}
#else
static inline const int8_t *tm_mac_2x2(const int8_t *w, const uint32_t *col, int32_t groups, int32_t acc[4])
{
    for (int32_t g = 0; g < groups; ++g) {
        const uint32_t wa = tm_load_u32(w), wb = tm_load_u32(w + 4);
        w += 8;
        const uint32_t wa02 = tm_sxtb16(wa), wa13 = tm_sxtb16_ror8(wa);
        const uint32_t wb02 = tm_sxtb16(wb), wb13 = tm_sxtb16_ror8(wb);
        acc[0] = tm_smlad(col[1], wa13, tm_smlad(col[0], wa02, acc[0]));
        acc[1] = tm_smlad(col[1], wb13, tm_smlad(col[0], wb02, acc[1]));
        acc[2] = tm_smlad(col[3], wa13, tm_smlad(col[2], wa02, acc[2]));
        acc[3] = tm_smlad(col[3], wb13, tm_smlad(col[2], wb02, acc[3]));
        col += TM_COLUMN_WORDS_PER_GROUP;
    }
    return w;
}
#endif

/* Two pixels x every output channel, from the int16 columns, with the fast rescale words of the table
 * (out1 == out0 for a lone last pixel: both slots then hold it). Walking pointers rather than a channel
 * index, and every per-channel constant read from one table pointer: fewer values live across the MAC loop. */
static TM_ALWAYS_INLINE void tm_gemm_block_fast(const tm_gemm_args *a, const uint32_t *columns, int8_t *out0,
                                                int8_t *out1, int clamp_lo, int clamp_hi)
{
    const int8_t *w = a->filter;
    const int32_t *t = a->table;
    const int32_t groups = a->groups, act_min = a->act_min, act_max = a->act_max;
    for (int32_t pairs = a->channels >> 1; pairs > 0; --pairs) {
        int32_t acc[4];
        acc[0] = acc[2] = t[0];
        acc[1] = acc[3] = t[1];
        w = tm_mac_2x2(w, columns, groups, acc);
        /* All reads before the int8 stores, which may alias anything and would force reloads. */
        const int32_t m0 = t[2], m1 = t[3], h0 = t[4], h1 = t[5], e0 = t[6], e1 = t[7];
        t += 8;
        const int32_t v00 = tm_fast_output(acc[0], m0, h0, e0, clamp_lo, clamp_hi, act_min, act_max);
        const int32_t v10 = tm_fast_output(acc[2], m0, h0, e0, clamp_lo, clamp_hi, act_min, act_max);
        const int32_t v01 = tm_fast_output(acc[1], m1, h1, e1, clamp_lo, clamp_hi, act_min, act_max);
        const int32_t v11 = tm_fast_output(acc[3], m1, h1, e1, clamp_lo, clamp_hi, act_min, act_max);
        out0[0] = (int8_t)v00;
        out0[1] = (int8_t)v01;
        out1[0] = (int8_t)v10;
        out1[1] = (int8_t)v11;
        out0 += 2;
        out1 += 2;
    }
    if (a->channels & 1) {
        /* The last channel of an odd count; its pair's second channel is padding, computed and dropped. */
        int32_t acc[4];
        acc[0] = acc[2] = t[0];
        acc[1] = acc[3] = t[1];
        tm_mac_2x2(w, columns, groups, acc);
        const int32_t m0 = t[2], h0 = t[4], e0 = t[6];
        const int32_t v00 = tm_fast_output(acc[0], m0, h0, e0, clamp_lo, clamp_hi, act_min, act_max);
        const int32_t v10 = tm_fast_output(acc[2], m0, h0, e0, clamp_lo, clamp_hi, act_min, act_max);
        out0[0] = (int8_t)v00;
        out1[0] = (int8_t)v10;
    }
}

/* As tm_gemm_block_fast for any shift (quant's multiplier and shift, the table's bias only). */
static void tm_gemm_block_general(const tm_gemm_args *a, const uint32_t *columns, int8_t *out0, int8_t *out1)
{
    const int8_t *w = a->filter;
    const int32_t *t = a->table, *multiplier = a->multiplier, *shift = a->shift;
    const int32_t output_offset = a->output_offset, act_min = a->act_min, act_max = a->act_max;
    for (int32_t c = 0; c < a->channels; c += 2) {
        int32_t acc[4];
        acc[0] = acc[2] = t[0];
        acc[1] = acc[3] = t[1];
        t += 8;
        w = tm_mac_2x2(w, columns, a->groups, acc);
        out0[c] = tm_output_value(acc[0], multiplier[c], shift[c], output_offset, act_min, act_max);
        out1[c] = tm_output_value(acc[2], multiplier[c], shift[c], output_offset, act_min, act_max);
        if (c + 1 < a->channels) {
            out0[c + 1] = tm_output_value(acc[1], multiplier[c + 1], shift[c + 1], output_offset, act_min, act_max);
            out1[c + 1] = tm_output_value(acc[3], multiplier[c + 1], shift[c + 1], output_offset, act_min, act_max);
        }
    }
}

/* The block functions, one per requantization form and activation clamp (chosen once per call). */
typedef void (*tm_gemm_block_fn)(const tm_gemm_args *a, const uint32_t *columns, int8_t *out0, int8_t *out1);

static void tm_gemm_block_fast_none(const tm_gemm_args *a, const uint32_t *columns, int8_t *out0, int8_t *out1)
{
    tm_gemm_block_fast(a, columns, out0, out1, 0, 0);
}

static void tm_gemm_block_fast_lo(const tm_gemm_args *a, const uint32_t *columns, int8_t *out0, int8_t *out1)
{
    tm_gemm_block_fast(a, columns, out0, out1, 1, 0);
}

static void tm_gemm_block_fast_both(const tm_gemm_args *a, const uint32_t *columns, int8_t *out0, int8_t *out1)
{
    tm_gemm_block_fast(a, columns, out0, out1, 1, 1);
}

static tm_gemm_block_fn tm_gemm_block_for(const tm_gemm_args *a, const tm_quant *quant)
{
    if (!tm_fast_rescale(quant, a->channels)) {
        return tm_gemm_block_general;
    }
    /* After SSAT the value is in [-128, 127]: a bound at or beyond that needs no compare. */
    if (a->act_max >= 127) {
        return a->act_min <= -128 ? tm_gemm_block_fast_none : tm_gemm_block_fast_lo;
    }
    return tm_gemm_block_fast_both;
}

/* The checks both variants share. */
static int tm_dsp_conv_args_ok(const tm_context *ctx, const tm_conv2d_params *params, const tm_quant *quant,
                               const tm_dims *input_dims, const int8_t *input,
                               const tm_dims *filter_dims, const int8_t *filter, const int32_t *bias,
                               const tm_dims *output_dims, const int8_t *output, int32_t scratch)
{
    if (ctx == NULL || params == NULL || input == NULL || filter == NULL || bias == NULL || output == NULL ||
        !tm_dims_ok(input_dims) || !tm_dims_ok(filter_dims) || !tm_dims_ok(output_dims)) {
        return 0;
    }
    if (filter_dims->c != input_dims->c || output_dims->c != filter_dims->n || output_dims->n != input_dims->n) {
        return 0;
    }
    if (!tm_window_ok(&params->stride, &params->dilation) || !tm_activation_ok(&params->activation) ||
        params->input_offset < -127 || params->input_offset > 128) {
        return 0;
    }
    /* The packed constants cover the channel count rounded up to even. */
    if (quant == NULL || quant->per_channel != 1 || !tm_quant_ok(quant, (output_dims->c + 1) & ~1)) {
        return 0;
    }
    return ctx->buf != NULL && ctx->size >= scratch && ((uintptr_t)ctx->buf & 3u) == 0;
}

static void tm_gemm_args_init(tm_gemm_args *a, const tm_conv2d_params *params, const tm_quant *quant,
                              const tm_dims *filter_dims, const int8_t *filter, const int32_t *table,
                              const tm_dims *output_dims)
{
    a->filter = filter;
    a->table = table;
    a->multiplier = quant->multiplier;
    a->shift = quant->shift;
    a->groups = tm_padded_depth(filter_dims) >> 2;
    a->channels = output_dims->c;
    a->output_offset = params->output_offset;
    a->act_min = params->activation.min;
    a->act_max = params->activation.max;
}

tm_status tm_conv2d_s8_dsp_1x1(const tm_context *ctx, const tm_conv2d_params *params, const tm_quant *quant,
                               const tm_dims *input_dims, const int8_t *input,
                               const tm_dims *filter_dims, const int8_t *packed_filter,
                               const int32_t *table,
                               const tm_dims *output_dims, int8_t *output)
{
    if (!tm_dsp_conv_args_ok(ctx, params, quant, input_dims, input, filter_dims, packed_filter, table,
                             output_dims, output,
                             tm_conv2d_s8_dsp_1x1_get_buffer_size(input_dims, filter_dims, output_dims))) {
        return TM_ARG_ERROR;
    }
    const int32_t sh = params->stride.h, sw = params->stride.w;
    /* No bounds checks below: every output pixel must read an input pixel. */
    if (filter_dims->h != 1 || filter_dims->w != 1 || params->padding.h != 0 || params->padding.w != 0 ||
        (output_dims->h - 1) * sh >= input_dims->h || (output_dims->w - 1) * sw >= input_dims->w) {
        return TM_ARG_ERROR;
    }
    tm_gemm_args a;
    tm_gemm_args_init(&a, params, quant, filter_dims, packed_filter, table, output_dims);
    const tm_gemm_block_fn block = tm_gemm_block_for(&a, quant);
    uint32_t *const columns = (uint32_t *)ctx->buf;
    const int32_t c_in = input_dims->c, c_out = output_dims->c;
    const int32_t h_out = output_dims->h, w_out = output_dims->w, h_in = input_dims->h, w_in = input_dims->w;
    const int32_t pixels = output_dims->n * h_out * w_out;
    int32_t b = 0, oy = 0, ox = 0;
    for (int32_t p = 0; p < pixels; p += 2) {
        int8_t *out0 = output + p * c_out;
        int8_t *out1 = p + 1 < pixels ? out0 + c_out : out0;
        for (int32_t slot = 0; slot < 2; ++slot) {
            /* A lone last pixel fills both slots (the second result is dropped). */
            tm_widen_column_tail(input + ((b * h_in + oy * sh) * w_in + ox * sw) * c_in, c_in, columns, slot);
            if (out1 != out0 && ++ox == w_out) {
                ox = 0;
                if (++oy == h_out) {
                    oy = 0;
                    ++b;
                }
            }
        }
        block(&a, columns, out0, out1);
    }
    return TM_OK;
}

int32_t tm_conv2d_s8_dsp_1x1_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                             const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 4 * tm_padded_depth(filter_dims);
}

static inline void tm_copy_s8(int8_t *dst, const int8_t *src, int32_t n)
{
    for (; n >= 4; n -= 4, src += 4, dst += 4) {
        tm_store_u32(dst, tm_load_u32(src));
    }
    for (; n > 0; --n) {
        *dst++ = *src++;
    }
}

static inline void tm_fill_s8(int8_t *dst, int8_t value, int32_t n)
{
    for (; n > 0; --n) {
        *dst++ = value;
    }
}

/* The filter window of output pixel (b, oy, ox) as one int8 column, [ky][kx][c_in], padded positions
 * holding the input zero point. */
static void tm_gather_window(const tm_conv2d_params *params, const tm_dims *input_dims, const int8_t *image,
                             const tm_dims *filter_dims, int32_t oy, int32_t ox, int8_t pad_value, int8_t *dst)
{
    const int32_t h_in = input_dims->h, w_in = input_dims->w, c_in = input_dims->c;
    const int32_t kh = filter_dims->h, kw = filter_dims->w;
    const int32_t dh = params->dilation.h, dw = params->dilation.w;
    const int32_t y0 = oy * params->stride.h - params->padding.h;
    const int32_t x0 = ox * params->stride.w - params->padding.w;
    const int32_t row_bytes = kw * c_in;
    /* With dilation 1 and the window inside the columns, a filter row is one contiguous run. */
    const int row_contiguous = dw == 1 && x0 >= 0 && x0 + kw <= w_in;
    for (int32_t ky = 0; ky < kh; ++ky) {
        const int32_t iy = y0 + ky * dh;
        if (iy < 0 || iy >= h_in) {
            tm_fill_s8(dst, pad_value, row_bytes);
        } else if (row_contiguous) {
            tm_copy_s8(dst, image + (iy * w_in + x0) * c_in, row_bytes);
        } else {
            for (int32_t kx = 0; kx < kw; ++kx) {
                const int32_t ix = x0 + kx * dw;
                if (ix < 0 || ix >= w_in) {
                    tm_fill_s8(dst + kx * c_in, pad_value, c_in);
                } else {
                    tm_copy_s8(dst + kx * c_in, image + (iy * w_in + ix) * c_in, c_in);
                }
            }
        }
        dst += row_bytes;
    }
}

tm_status tm_conv2d_s8_dsp_im2col(const tm_context *ctx, const tm_conv2d_params *params, const tm_quant *quant,
                                  const tm_dims *input_dims, const int8_t *input,
                                  const tm_dims *filter_dims, const int8_t *packed_filter,
                                  const int32_t *table,
                                  const tm_dims *output_dims, int8_t *output)
{
    if (!tm_dsp_conv_args_ok(ctx, params, quant, input_dims, input, filter_dims, packed_filter, table,
                             output_dims, output,
                             tm_conv2d_s8_dsp_im2col_get_buffer_size(input_dims, filter_dims, output_dims))) {
        return TM_ARG_ERROR;
    }
    tm_gemm_args a;
    tm_gemm_args_init(&a, params, quant, filter_dims, packed_filter, table, output_dims);
    const tm_gemm_block_fn block = tm_gemm_block_for(&a, quant);
    const int32_t padded_depth = tm_padded_depth(filter_dims);
    const int32_t depth = filter_dims->h * filter_dims->w * filter_dims->c;
    uint32_t *const columns = (uint32_t *)ctx->buf;
    int8_t *const window = (int8_t *)ctx->buf + 4 * padded_depth;
    /* The depth padding multiplies zero weights; zero it once so the columns hold defined values. */
    tm_fill_s8(window + depth, 0, padded_depth - depth);
    const int8_t pad_value = (int8_t)(-params->input_offset);
    const int32_t c_out = output_dims->c, h_out = output_dims->h, w_out = output_dims->w;
    const int32_t image_step = input_dims->h * input_dims->w * input_dims->c;
    const int32_t pixels = output_dims->n * h_out * w_out;
    int32_t b = 0, oy = 0, ox = 0;
    for (int32_t p = 0; p < pixels; p += 2) {
        int8_t *out0 = output + p * c_out;
        int8_t *out1 = p + 1 < pixels ? out0 + c_out : out0;
        for (int32_t slot = 0; slot < 2; ++slot) {
            /* A lone last pixel fills both slots (the second result is dropped). */
            if (slot == 0 || out1 != out0) {
                tm_gather_window(params, input_dims, input + b * image_step, filter_dims, oy, ox, pad_value,
                                 window);
                if (++ox == w_out) {
                    ox = 0;
                    if (++oy == h_out) {
                        oy = 0;
                        ++b;
                    }
                }
            }
            tm_widen_column(window, padded_depth >> 2, columns, slot);
        }
        block(&a, columns, out0, out1);
    }
    return TM_OK;
}

int32_t tm_conv2d_s8_dsp_im2col_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                                const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 5 * tm_padded_depth(filter_dims);
}
