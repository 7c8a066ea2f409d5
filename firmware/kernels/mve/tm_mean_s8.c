/*
 * MEAN over H and W (int8) with Helium: 16 channels per step, the portable kernel's single requantization
 * vectorised (see mve/tm_mean_s8.h).
 */
#include "tm_nn.h"
#include "tm_support.h"
#include "tm_mean_s8.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>

/* Positions summed in int16 lanes before folding into int32: 256 * -128 is still INT16_MIN. */
#define CHUNK 256

typedef struct {
    int32_t hw, c;
    int32_t input_bias;  /* input_offset * h * w (LiteRT's int32 arithmetic wraps: so does the kernel's) */
    int32_t multiplier, left, right, output_offset;
} mean_args;

/* Channels [0, channels) (<= 16) of one batch, `in` at channel 0 of position 0. */
static void mean_block(const mean_args *a, const int8_t *in, int32_t channels, int8_t *out)
{
    const mve_pred16_t p_lo = vctp16q((uint32_t)channels);
    const mve_pred16_t p_hi = vctp16q((uint32_t)(channels > 8 ? channels - 8 : 0));
    int32x4_t acc[4];
    for (int32_t i = 0; i < 4; ++i) {
        acc[i] = vdupq_n_s32(a->input_bias);
    }
    int16_t sums[16];
    for (int32_t start = 0; start < a->hw; start += CHUNK) {
        const int32_t end = a->hw - start < CHUNK ? a->hw : start + CHUNK;
        int16x8_t lo = vdupq_n_s16(0), hi = vdupq_n_s16(0);
        const int8_t *p = in + start * a->c;
        for (int32_t i = start; i < end; ++i) {
            lo = vaddq_s16(lo, vldrbq_z_s16(p, p_lo));
            hi = vaddq_s16(hi, vldrbq_z_s16(p + 8, p_hi));
            p += a->c;
        }
        vst1q_s16(sums, lo);
        vst1q_s16(sums + 8, hi);
        for (int32_t i = 0; i < 4; ++i) {
            acc[i] = vaddq_s32(acc[i], vldrhq_s32(sums + 4 * i));
        }
    }
    for (int32_t i = 0; i < 4 && 4 * i < channels; ++i) {
        /* tm_requantize: the left shift wraps like LiteRT's int32 multiply by 2^left */
        int32x4_t y = vqrdmulhq_n_s32(vshlq_r_s32(acc[i], a->left), a->multiplier);
        if (a->right > 0) {
            y = vrshlq_n_s32(vaddq_s32(y, vshrq_n_s32(y, 31)), -a->right);
        }
        y = vaddq_n_s32(y, a->output_offset);
        y = vminq_s32(vmaxq_s32(y, vdupq_n_s32(-128)), vdupq_n_s32(127));
        vstrbq_p_s32(out + 4 * i, y, vctp32q((uint32_t)(channels - 4 * i)));
    }
}

tm_status tm_mean_s8_mve(const tm_context *ctx, const tm_mean_params *params,
                         const tm_dims *input_dims, const int8_t *input,
                         const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (!tm_mean_args_ok(params, input_dims, input, output_dims, output)) {
        return TM_ARG_ERROR;
    }
    mean_args a;
    a.hw = input_dims->h * input_dims->w;
    a.c = input_dims->c;
    a.input_bias = (int32_t)((uint32_t)params->input_offset * (uint32_t)a.hw);
    a.multiplier = params->multiplier;
    a.left = params->shift > 0 ? params->shift : 0;
    a.right = params->shift > 0 ? 0 : -params->shift;
    a.output_offset = params->output_offset;
    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int8_t *in = input + b * a.hw * a.c;
        for (int32_t ch = 0; ch < a.c; ch += 16) {
            mean_block(&a, in + ch, a.c - ch < 16 ? a.c - ch : 16, output + b * a.c + ch);
        }
    }
    return TM_OK;
}

#endif /* __ARM_FEATURE_MVE */

int32_t tm_mean_s8_mve_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
