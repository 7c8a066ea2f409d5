/*
 * TRANSPOSE_CONV (int8) for cores with the DSP extension: the portable kernel's gather, with each output pixel's
 * input pixels widened once into an int16 column that all output channels share, and two products per SMLAD.
 * SMLAD wraps like LiteRT's int32 sums, so the accumulator is the portable kernel's, bit for bit.
 */
#include "tm_nn.h"
#include "tm_simd.h"
#include "tm_support.h"
#include "tm_transpose_conv_s8.h"

/* int16 values per column slot: an even count keeps every slot word-aligned. */
static inline int32_t slot_size(int32_t c_in)
{
    return (c_in + 1) & ~1;
}

/* One input pixel plus the input offset, as int16: four channels per load, in the lane order SXTB16 gives a
 * filter word (channels 0, 2 in the first word, 1, 3 in the second); the last c_in % 4 channels in order. */
static inline void widen(const int8_t *in, int32_t c_in, int32_t offset, int16_t *slot)
{
    const uint32_t offset2 = ((uint32_t)offset & 0xFFFFu) | ((uint32_t)offset << 16); /* both int16 lanes */
    int32_t ic = 0;
    for (; ic + 4 <= c_in; ic += 4) {
        const uint32_t x = tm_load_u32(in + ic);
        tm_store_u32(slot + ic, tm_sxtab16(offset2, x));
        tm_store_u32(slot + ic + 2, tm_sxtab16_ror8(offset2, x));
    }
    for (; ic < c_in; ++ic) {
        slot[ic] = (int16_t)(in[ic] + offset);
    }
}

/* Two output channels' sums over the column's taps (filter0, filter1: their filters), wrapping like int32 adds:
 * each column word is loaded once for both. */
static inline void dot2(const int16_t *column, const int32_t *taps, int32_t n_taps, const int8_t *filter0,
                        const int8_t *filter1, int32_t c_in, uint32_t *sum0, uint32_t *sum1)
{
    const int32_t slot = slot_size(c_in);
    int32_t acc0 = 0, acc1 = 0;
    for (int32_t t = 0; t < n_taps; ++t) {
        const int8_t *f0 = filter0 + taps[t], *f1 = filter1 + taps[t];
        const int16_t *col = column + t * slot;
        int32_t ic = 0;
        for (; ic + 4 <= c_in; ic += 4) {
            const uint32_t x02 = tm_load_u32(col + ic), x13 = tm_load_u32(col + ic + 2);
            const uint32_t w0 = tm_load_u32(f0 + ic), w1 = tm_load_u32(f1 + ic);
            acc0 = tm_smlad(x02, tm_sxtb16(w0), acc0);
            acc0 = tm_smlad(x13, tm_sxtb16_ror8(w0), acc0);
            acc1 = tm_smlad(x02, tm_sxtb16(w1), acc1);
            acc1 = tm_smlad(x13, tm_sxtb16_ror8(w1), acc1);
        }
        for (; ic < c_in; ++ic) {
            acc0 = (int32_t)((uint32_t)acc0 + (uint32_t)(col[ic] * f0[ic]));
            acc1 = (int32_t)((uint32_t)acc1 + (uint32_t)(col[ic] * f1[ic]));
        }
    }
    *sum0 = (uint32_t)acc0;
    *sum1 = (uint32_t)acc1;
}

/* acc + bias, requantized, offset and clamped: the portable kernel's output arithmetic. */
static inline int8_t finish(uint32_t acc, const int32_t *bias, const tm_quant *quant, int32_t oc,
                            const tm_transpose_conv_params *params)
{
    if (bias != NULL) {
        acc += (uint32_t)bias[oc];
    }
    const int32_t q = quant->per_channel ? oc : 0;
    const int32_t scaled = tm_requantize((int32_t)acc, quant->multiplier[q], quant->shift[q]);
    return (int8_t)tm_clamp(tm_wrapping_add(scaled, params->output_offset), params->activation.min,
                            params->activation.max);
}

tm_status tm_transpose_conv_s8_dsp(const tm_context *ctx, const tm_transpose_conv_params *params,
                                   const tm_quant *quant,
                                   const tm_dims *input_dims, const int8_t *input,
                                   const tm_dims *filter_dims, const int8_t *filter,
                                   const int32_t *bias,
                                   const tm_dims *output_dims, int8_t *output)
{
    if (!tm_transpose_conv_args_ok(params, quant, input_dims, input, filter_dims, filter, output_dims, output) ||
        ctx == NULL || ctx->buf == NULL ||
        ctx->size < tm_transpose_conv_s8_dsp_get_buffer_size(input_dims, filter_dims, output_dims)) {
        return TM_ARG_ERROR;
    }
    const int32_t h_in = input_dims->h, w_in = input_dims->w, c_in = input_dims->c;
    const int32_t kh = filter_dims->h, kw = filter_dims->w;
    const int32_t h_out = output_dims->h, w_out = output_dims->w, c_out = output_dims->c;
    const int32_t stride_h = params->stride.h, stride_w = params->stride.w;
    const int32_t pad_h = params->padding.h, pad_w = params->padding.w;
    /* input_offset lies in [-127, 128]: plus an int8 it fits an int16 lane. */
    const int32_t input_offset = params->input_offset;
    const int32_t filter_size = kh * kw * c_in;
    int16_t *const column = (int16_t *)ctx->buf;
    const int32_t slot = slot_size(c_in);
    int32_t *const taps = (int32_t *)(column + kh * kw * slot);

    for (int32_t b = 0; b < output_dims->n; ++b) {
        const int8_t *const image = input + b * h_in * w_in * c_in;
        for (int32_t oy = 0; oy < h_out; ++oy) {
            const int32_t ky0 = tm_transpose_conv_first_tap(oy, pad_h, stride_h);
            for (int32_t ox = 0; ox < w_out; ++ox) {
                const int32_t kx0 = tm_transpose_conv_first_tap(ox, pad_w, stride_w);
                int32_t n_taps = 0;
                for (int32_t ky = ky0; ky < kh && oy + pad_h - ky >= 0; ky += stride_h) {
                    const int32_t iy = (oy + pad_h - ky) / stride_h;
                    if (iy >= h_in) {
                        continue;
                    }
                    for (int32_t kx = kx0; kx < kw && ox + pad_w - kx >= 0; kx += stride_w) {
                        const int32_t ix = (ox + pad_w - kx) / stride_w;
                        if (ix >= w_in) {
                            continue;
                        }
                        widen(image + (iy * w_in + ix) * c_in, c_in, input_offset, column + n_taps * slot);
                        taps[n_taps++] = (ky * kw + kx) * c_in;
                    }
                }
                int8_t *out = output + ((b * h_out + oy) * w_out + ox) * c_out;
                /* An odd count pairs its last channel with itself (the same value, computed and stored twice). */
                for (int32_t oc = 0; oc < c_out; oc += 2) {
                    const int32_t oc1 = oc + 1 < c_out ? oc + 1 : oc;
                    uint32_t acc0, acc1;
                    dot2(column, taps, n_taps, filter + oc * filter_size, filter + oc1 * filter_size, c_in,
                         &acc0, &acc1);
                    out[oc] = finish(acc0, bias, quant, oc, params);
                    out[oc1] = finish(acc1, bias, quant, oc1, params);
                }
            }
        }
    }
    return TM_OK;
}

int32_t tm_transpose_conv_s8_dsp_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                                 const tm_dims *output_dims)
{
    (void)output_dims;
    return filter_dims->h * filter_dims->w * (slot_size(input_dims->c) * 2 + 4);
}
