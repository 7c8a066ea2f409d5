/*
 * MEAN over H and W (int8) for cores with the DSP extension: per-channel sums four channels per LDR in int16
 * lanes, then the portable kernel's single requantization (1/(h*w) folded into the multiplier).
 */
#include "tm_nn.h"
#include "tm_simd.h"
#include "tm_support.h"
#include "tm_mean_s8.h"

/* Positions summed in int16 lanes before folding into int32: 256 * -128 is still INT16_MIN. */
#define CHUNK 256

typedef struct {
    int32_t input_offset, output_offset, multiplier, shift;
    int32_t hw;
} mean_args;

static inline int8_t finish(const mean_args *a, int32_t sum)
{
    /* LiteRT sums in int32 (wrapping): uint32 reproduces that. */
    const int32_t acc = (int32_t)((uint32_t)sum + (uint32_t)a->input_offset * (uint32_t)a->hw);
    const int32_t scaled = tm_requantize(acc, a->multiplier, a->shift);
    return (int8_t)tm_clamp(tm_wrapping_add(scaled, a->output_offset), -128, 127);
}

/* Channels [ch, ch + 4) of one batch: in points at channel ch of position 0. */
static void mean4(const mean_args *a, const int8_t *in, int32_t c, int8_t *out)
{
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int32_t start = 0; start < a->hw; start += CHUNK) {
        const int32_t end = a->hw - start < CHUNK ? a->hw : start + CHUNK;
        uint32_t even = 0, odd = 0; /* channels 0, 2 and 1, 3 */
        const int8_t *p = in + start * c;
        int32_t i = start;
        for (; i + 2 <= end; i += 2) {
            const uint32_t w0 = tm_load_u32(p), w1 = tm_load_u32(p + c);
            even = tm_sxtab16(even, w0);
            odd = tm_sxtab16_ror8(odd, w0);
            even = tm_sxtab16(even, w1);
            odd = tm_sxtab16_ror8(odd, w1);
            p += 2 * c;
        }
        if (i < end) {
            const uint32_t w = tm_load_u32(p);
            even = tm_sxtab16(even, w);
            odd = tm_sxtab16_ror8(odd, w);
        }
        s0 += (int16_t)(even & 0xFFFFu);
        s1 += (int16_t)(odd & 0xFFFFu);
        s2 += (int32_t)even >> 16;
        s3 += (int32_t)odd >> 16;
    }
    out[0] = finish(a, s0);
    out[1] = finish(a, s1);
    out[2] = finish(a, s2);
    out[3] = finish(a, s3);
}

tm_status tm_mean_s8_dsp(const tm_context *ctx, const tm_mean_params *params,
                         const tm_dims *input_dims, const int8_t *input,
                         const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (!tm_mean_args_ok(params, input_dims, input, output_dims, output)) {
        return TM_ARG_ERROR;
    }
    mean_args a;
    a.input_offset = params->input_offset;
    a.output_offset = params->output_offset;
    a.multiplier = params->multiplier;
    a.shift = params->shift;
    a.hw = input_dims->h * input_dims->w;
    const int32_t c = input_dims->c;
    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int8_t *in = input + b * a.hw * c;
        int8_t *out = output + b * c;
        int32_t ch = 0;
        for (; ch + 4 <= c; ch += 4) {
            mean4(&a, in + ch, c, out + ch);
        }
        for (; ch < c; ++ch) {
            int32_t sum = 0;
            for (int32_t i = 0; i < a.hw; ++i) {
                sum += in[i * c + ch];
            }
            out[ch] = finish(&a, sum);
        }
    }
    return TM_OK;
}

int32_t tm_mean_s8_dsp_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
