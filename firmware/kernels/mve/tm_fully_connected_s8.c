/*
 * FULLY_CONNECTED (int8) for Cortex-M55 with MVE (layout and contract: tm_fully_connected_s8.h). The input row
 * is read in place, whole 16-byte vectors and, when the depth is not a multiple of 16, one zeroing predicated
 * load for the last chunk (the padded weights there are 0 too); no scratch. The input offset is in the folded
 * bias.
 */
#include <arm_mve.h>

#include "tm_nn.h"
#include "tm_support.h"
#include "tm_fully_connected_s8.h"

#define ROWS 4  /* output rows per pass over the input: one int32x4 of accumulators */
#define CHUNK 16 /* weights per VMLADAVA */

typedef struct {
    const int32_t *multiplier, *shift, *bias;
    const tm_fully_connected_quant *exact; /* NULL: tflite-micro rounding */
    int32_t high_shift, output_offset, act_min, act_max;
} fc_args;

static inline int32_t padded_depth(int32_t depth)
{
    return (depth + CHUNK - 1) / CHUNK * CHUNK;
}

/* bias + the four interleaved rows of a block dotted with x: `chunks` whole chunks, then `tail` (0: none) the
 * predicate of a last partial chunk. */
static inline int32x4_t block4(const int8_t *w, const int8_t *x, int32_t chunks, mve_pred16_t tail,
                               const int32_t *bias)
{
    int32_t a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
    for (; chunks != 0; --chunks) {
        const int8x16_t v = vld1q_s8(x);
        a0 = vmladavaq_s8(a0, v, vld1q_s8(w));
        a1 = vmladavaq_s8(a1, v, vld1q_s8(w + CHUNK));
        a2 = vmladavaq_s8(a2, v, vld1q_s8(w + 2 * CHUNK));
        a3 = vmladavaq_s8(a3, v, vld1q_s8(w + 3 * CHUNK));
        x += CHUNK;
        w += ROWS * CHUNK;
    }
    if (tail != 0) {
        const int8x16_t v = vldrbq_z_s8(x, tail);
        a0 = vmladavaq_s8(a0, v, vld1q_s8(w));
        a1 = vmladavaq_s8(a1, v, vld1q_s8(w + CHUNK));
        a2 = vmladavaq_s8(a2, v, vld1q_s8(w + 2 * CHUNK));
        a3 = vmladavaq_s8(a3, v, vld1q_s8(w + 3 * CHUNK));
    }
    int32x4_t acc = vdupq_n_s32(a0);
    acc = vsetq_lane_s32(a1, acc, 1);
    acc = vsetq_lane_s32(a2, acc, 2);
    return vsetq_lane_s32(a3, acc, 3);
}

static inline int32_t row1(const int8_t *w, const int8_t *x, int32_t chunks, mve_pred16_t tail, int32_t acc)
{
    for (; chunks != 0; --chunks) {
        acc = vmladavaq_s8(acc, vld1q_s8(x), vld1q_s8(w));
        x += CHUNK;
        w += CHUNK;
    }
    return tail != 0 ? vmladavaq_s8(acc, vldrbq_z_s8(x, tail), vld1q_s8(w)) : acc;
}

static inline int32_t scalar_scaled(const fc_args *a, int32_t acc, int32_t c)
{
    if (a->exact == NULL) {
        return tm_requantize(acc, a->multiplier[c], a->shift[c]);
    }
    /* |result| < 2^30; LiteRT adds the offset without wrapping, so beyond +-512 the clamp decides alone. */
    return tm_clamp(tm_fully_connected_requantize_fast(acc, (uint32_t)a->multiplier[c], a->high_shift, a->exact, c),
                    -512, 512);
}

static inline int8_t scalar_out(const fc_args *a, int32_t acc, int32_t c)
{
    return (int8_t)tm_clamp(tm_wrapping_add(scalar_scaled(a, acc, c), a->output_offset), a->act_min, a->act_max);
}

/* Channels c .. c + 3, LiteRT rounding (see tm_fully_connected_fast_quant): the vector decides all four
 * unless a lane lies near a rounding boundary (rare), then the scalar path does the block. */
static inline int32x4_t scaled_litert(const fc_args *a, int32x4_t acc, int32_t c)
{
    const uint32x4_t magnitude = vreinterpretq_u32_s32(vabsq_s32(acc)); /* |INT32_MIN| = 2^31 as uint32 */
    const uint32x4_t multiplier = vreinterpretq_u32_s32(vld1q_s32(a->multiplier + c));
    const uint32_t half = UINT32_C(1) << (a->high_shift - 1), mask = (UINT32_C(1) << a->high_shift) - 1u;
    const uint32x4_t biased = vaddq_n_u32(vmulhq_u32(magnitude, multiplier), half);
    const uint32x4_t cell_less_one = vsubq_n_u32(vandq_u32(biased, vdupq_n_u32(mask)), 1u);
    /* Lanes with cell - 1 >= 2^shift - 2 (cell 0 or 2^shift - 1) cannot be decided from the high word. */
    if (vcmpcsq_n_u32(cell_less_one, mask - 1u) != 0) {
        int32_t lanes[ROWS];
        vst1q_s32(lanes, acc);
        for (int32_t i = 0; i < ROWS; ++i) {
            lanes[i] = scalar_scaled(a, lanes[i], c + i);
        }
        return vld1q_s32(lanes);
    }
    const int32x4_t rounded = vreinterpretq_s32_u32(vshlq_u32(biased, vdupq_n_s32(-a->high_shift)));
    const int32x4_t signed_rounded = vpselq_s32(vnegq_s32(rounded), rounded, vcmpltq_n_s32(acc, 0));
    return vminq_s32(vmaxq_s32(signed_rounded, vdupq_n_s32(-512)), vdupq_n_s32(512));
}

/* Channels c .. c + 3, TFLite's double rounding, as tm_requantize lane by lane. */
static inline int32x4_t scaled_tflm(const fc_args *a, int32x4_t acc, int32_t c)
{
    const int32x4_t shift = vld1q_s32(a->shift + c), zero = vdupq_n_s32(0);
    const int32x4_t left = vmaxq_s32(shift, zero), right = vminq_s32(shift, zero); /* right <= 0 */
    /* x * 2^left wraps as TFLite's int32 shift; VQRDMULH is SaturatingRoundingDoublingHighMul exactly. */
    const int32x4_t high = vqrdmulhq_s32(vshlq_s32(acc, left), vld1q_s32(a->multiplier + c));
    /* RoundingDivideByPOT rounds half away from zero, VRSHL half up: for negative values and a real shift,
     * subtract 1 first (saturating: INT32_MIN is a multiple of 2^right already). */
    const mve_pred16_t shifting = vcmpltq_n_s32(right, 0);
    const int32x4_t fixed = vqaddq_m_s32(high, high, vshrq_n_s32(high, 31), shifting);
    return vrshlq_s32(fixed, right);
}

static inline void store4(const fc_args *a, int32x4_t scaled, int8_t *out)
{
    const int32x4_t v = vaddq_n_s32(scaled, a->output_offset); /* wraps, as both references' int32 add */
    vstrbq_s32(out, vminq_s32(vmaxq_s32(v, vdupq_n_s32(a->act_min)), vdupq_n_s32(a->act_max)));
}

static int quant_ok(const tm_fully_connected_fast_quant *q, int32_t channels)
{
    if (q == NULL || q->multiplier == NULL || !q->per_channel) {
        return 0;
    }
    const tm_fully_connected_quant *e = q->exact;
    if (e != NULL) {
        return e->mantissa_hi != NULL && e->mantissa_lo != NULL && e->exponent != NULL && e->per_channel &&
               q->high_shift >= 2 && q->high_shift <= 31;
    }
    if (q->shift == NULL) {
        return 0;
    }
    for (int32_t i = 0; i < channels; ++i) {
        if (!tm_shift_ok(q->shift[i])) {
            return 0;
        }
    }
    return 1;
}

/* Inlined into each entry point: a model links only the rounding it calls. */
__attribute__((always_inline)) static inline tm_status
fully_connected(const tm_context *ctx, const tm_fully_connected_params *params,
                const tm_fully_connected_fast_quant *quant, const int tflm, const tm_dims *input_dims,
                const int8_t *input, const tm_dims *filter_dims, const int8_t *filter, const int32_t *bias,
                const tm_dims *output_dims, int8_t *output)
{
    if (params == NULL || input == NULL || filter == NULL || bias == NULL || output == NULL || ctx == NULL ||
        !tm_dims_ok(input_dims) || !tm_dims_ok(filter_dims) || !tm_dims_ok(output_dims) ||
        !tm_activation_ok(&params->activation) || params->filter_offset != 0 ||
        filter_dims->c != input_dims->c || output_dims->n != input_dims->n || output_dims->c != filter_dims->n ||
        !quant_ok(quant, filter_dims->n) || (quant->exact == NULL) != tflm) {
        return TM_ARG_ERROR;
    }
    const int32_t depth = input_dims->c, k16 = padded_depth(depth), out_depth = filter_dims->n;
    const fc_args a = {quant->multiplier, quant->shift, bias, quant->exact, quant->high_shift,
                       params->output_offset, params->activation.min, params->activation.max};
    const int32_t chunks = depth / CHUNK, blocked = out_depth / ROWS * ROWS;
    const mve_pred16_t tail = depth % CHUNK != 0 ? vctp8q((uint32_t)(depth % CHUNK)) : 0;
    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int8_t *const x = input + b * depth;
        const int8_t *w = filter;
        int8_t *out = output + b * out_depth;
        for (int32_t o = 0; o < blocked; o += ROWS) {
            const int32x4_t acc = block4(w, x, chunks, tail, bias + o);
            store4(&a, tflm ? scaled_tflm(&a, acc, o) : scaled_litert(&a, acc, o), out + o);
            w += ROWS * k16;
        }
        for (int32_t o = blocked; o < out_depth; ++o) {
            out[o] = scalar_out(&a, row1(w, x, chunks, tail, bias[o]), o);
            w += k16;
        }
    }
    return TM_OK;
}

tm_status tm_fully_connected_s8_mve(const tm_context *ctx, const tm_fully_connected_params *params,
                                    const tm_fully_connected_fast_quant *quant,
                                    const tm_dims *input_dims, const int8_t *input,
                                    const tm_dims *filter_dims, const int8_t *filter,
                                    const int32_t *bias,
                                    const tm_dims *output_dims, int8_t *output)
{
    return fully_connected(ctx, params, quant, 0, input_dims, input, filter_dims, filter, bias, output_dims,
                           output);
}

tm_status tm_fully_connected_s8_mve_tflm(const tm_context *ctx, const tm_fully_connected_params *params,
                                         const tm_fully_connected_fast_quant *quant,
                                         const tm_dims *input_dims, const int8_t *input,
                                         const tm_dims *filter_dims, const int8_t *filter,
                                         const int32_t *bias,
                                         const tm_dims *output_dims, int8_t *output)
{
    return fully_connected(ctx, params, quant, 1, input_dims, input, filter_dims, filter, bias, output_dims,
                           output);
}

int32_t tm_fully_connected_s8_mve_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                                  const tm_dims *output_dims)
{
    (void)input_dims;
    (void)filter_dims;
    (void)output_dims;
    return 0; /* the input is read in place */
}
