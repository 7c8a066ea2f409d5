/*
 * dsp/tm_fully_connected_s8.h - FULLY_CONNECTED (int8) for cores with the DSP extension, bit-exact with the
 * portable tm_fully_connected_s8 (LiteRT's single rounding) and tm_fully_connected_s8_tflm (tflite-micro's
 * double rounding). Two SMLADs per four weights; four output rows share each pass over the input, which is
 * widened to int16 once per batch row into scratch.
 *
 * The compiler prepares (toolchain/compiler/ops/dsp/fully_connected.py):
 * - filter: the int8 weights [out_depth, accum_depth] re-laid out, each row zero-padded to
 *   kp = accum_depth rounded up to a multiple of 16. Rows come in blocks of four (rows 4j .. 4j + 3): for
 *   each group of four columns g, the block holds row 4j's four weights of g, then row 4j + 1's, 4j + 2's and
 *   4j + 3's (16 bytes). The last out_depth % 4 rows follow, each as its kp weights in order. Word aligned.
 * - bias: the folded bias, bias[o] + input_offset * sum_k filter[o, k] (int32, wrapping), never NULL; the
 *   kernel ignores params->input_offset (filter_offset must be 0: int8 weights are symmetric).
 * - quant (tm_fully_connected_fast_quant): see below, with per_channel == 1 (one entry per output channel).
 * Scratch (ctx): none needed (tm_fully_connected_s8_dsp_get_buffer_size() is 0). Given at least
 * tm_fully_connected_s8_dsp_widened_size() bytes (kp int16, 4-byte aligned) the kernel widens each batch row
 * into it once, before it writes any output of that row (about 10% fewer instructions); with less it widens
 * every input word as it loads it, for every block of four rows, and reads the input until the row's last
 * output (the compiler takes the widened form only within the layer's scratch budget, and lets the output
 * overlap the input only then: ops/dsp/fully_connected.py); except that an output row longer than
 * 2 * kp + 16 bytes, apart from the input, holds the widened row in its last bytes while the outputs before
 * them are computed (the output's bytes are the kernel's to write).
 */
#ifndef TM_DSP_FULLY_CONNECTED_S8_H
#define TM_DSP_FULLY_CONNECTED_S8_H

#include "tm_nn.h"

/* Requantization of the fast FULLY_CONNECTED kernels (dsp and mve).
 * tflite-micro rounding (exact == NULL): multiplier[c], shift[c] as tm_quant (tm_nn.h).
 * LiteRT rounding (exact != NULL, the layer's tm_fully_connected_quant): scale[c] = m * 2^exponent[c] is
 * approximated as multiplier[c] * 2^-(32 + high_shift) from below, multiplier[c] = floor(m * 2^(exponent[c] +
 * 32 + high_shift)) (uint32 bits), with one high_shift in [2, 31] for the layer (scales below 2^-2). Then
 * |acc| * multiplier lies within |acc| < 2^32 units below the exact product and the double product within
 * 2^11 of that: the high word rounded at bit high_shift decides, unless it lies within 2^32 units of a
 * rounding boundary, where tm_fully_connected_requantize_litert recomputes it from `exact` (rare: about
 * 2 / 2^high_shift of the outputs). shift is unused (NULL).
 * The fast kernels take one entry per output channel (per_channel == 1, also in `exact`), even for
 * per-tensor weights: no branch per output. */
typedef struct {
    const int32_t *multiplier;
    const int32_t *shift;
    int32_t high_shift;
    const tm_fully_connected_quant *exact;
    int32_t per_channel;
} tm_fully_connected_fast_quant;

/* LiteRT's single rounding of acc * scale[c] (see tm_fully_connected_fast_quant); |result| < 2^30. */
static inline int32_t tm_fully_connected_requantize_fast(int32_t acc, uint32_t multiplier, int32_t high_shift,
                                                         const tm_fully_connected_quant *exact, int32_t c)
{
    const uint32_t magnitude = acc < 0 ? 0u - (uint32_t)acc : (uint32_t)acc;
    const uint32_t high = (uint32_t)(((uint64_t)magnitude * multiplier) >> 32);
    const uint32_t biased = high + (UINT32_C(1) << (high_shift - 1));
    /* biased's place in its rounding interval is cell = biased mod 2^high_shift; cell in [1, 2^high_shift - 2]
     * is (cell + 1) mod 2^high_shift >= 2, one constant fewer to keep in a register. */
    if (((biased + 1u) & ((UINT32_C(1) << high_shift) - 1u)) > 1u) {
        const int32_t rounded = (int32_t)(biased >> high_shift);
        return acc < 0 ? -rounded : rounded;
    }
    return tm_fully_connected_requantize_litert(acc, exact->mantissa_hi[c], exact->mantissa_lo[c],
                                                exact->exponent[c]);
}

/* LiteRT rounding (quant->exact != NULL). */
tm_status tm_fully_connected_s8_dsp(const tm_context *ctx, const tm_fully_connected_params *params,
                                    const tm_fully_connected_fast_quant *quant,
                                    const tm_dims *input_dims, const int8_t *input,
                                    const tm_dims *filter_dims, const int8_t *filter,
                                    const int32_t *bias,
                                    const tm_dims *output_dims, int8_t *output);
/* tflite-micro rounding (quant->exact == NULL). */
tm_status tm_fully_connected_s8_dsp_tflm(const tm_context *ctx, const tm_fully_connected_params *params,
                                         const tm_fully_connected_fast_quant *quant,
                                         const tm_dims *input_dims, const int8_t *input,
                                         const tm_dims *filter_dims, const int8_t *filter,
                                         const int32_t *bias,
                                         const tm_dims *output_dims, int8_t *output);
int32_t tm_fully_connected_s8_dsp_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                                  const tm_dims *output_dims);
/* The scratch that selects the widened form: 2 * kp bytes. */
int32_t tm_fully_connected_s8_dsp_widened_size(const tm_dims *input_dims);

#endif /* TM_DSP_FULLY_CONNECTED_S8_H */
