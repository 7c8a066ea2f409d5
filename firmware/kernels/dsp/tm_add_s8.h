/*
 * dsp/tm_add_s8.h - ADD of same-shape int8 tensors with 32-bit arithmetic (Armv7E-M / Armv8-M DSP).
 * Bit-exact with the portable tm_add_s8 (LiteRT's reference int8 ADD, tm_nn.h).
 *
 * The compiler passes the inputs so that input1 is the one whose rescale factor is exactly 1/2 (TFLite
 * rescales both inputs to twice the larger input scale, so the larger one always gets (2^30, shift 0)).
 * With v = input + input_offset (|v| <= 255) and LiteRT's left shift of 20:
 * - input1: SaturatingRoundingDoublingHighMul(v1 * 2^20, 2^30) = v1 * 2^19 exactly, so twice it is v1 * 2^20;
 * - input2: SaturatingRoundingDoublingHighMul(v2 * 2^20, m) = floor((v2 * 2^21 * m + 2^31) / 2^32), the rounded
 *   high word of a product (SMMULR), exact because v2 * 2^21 never reaches INT32_MIN; RoundingDivideByPOT by e2
 *   (half away from zero) is (t + 2^(e2-1) - [v2 < 0]) >> e2: t < 0 implies v2 < 0, and when v2 < 0 but t = 0
 *   the -1 still rounds to 0 because e2 >= 1;
 * - output: with s = 2 * (r1 + r2) (|s| < 2^29), SaturatingRoundingDoublingHighMul(s / 2, mo) = SMMULR(s, mo) and
 *   the rounding divide by eo >= 1 plus the output offset is
 *   (SMMLAR(s, mo, 2^(eo-1) + output_offset * 2^eo) - [s < 0]) >> eo, by the same sign argument.
 * The compiler checks every (input1, input2) pair against the reference formula before choosing this kernel.
 */
#ifndef TM_DSP_ADD_S8_H
#define TM_DSP_ADD_S8_H

#include "tm_nn.h"

typedef struct {
    int32_t input1_offset;     /* input1_offset * 2^20 (input1: rescale factor 1/2); with small_shift == 0:
                                  (input1_offset + input2_offset) * 2^20 */
    int32_t input2_offset;     /* input2_offset * 2^21 */
    int32_t input2_multiplier; /* input2's (multiplier, shift): multiplier in [2^30, 2^31) */
    int32_t input2_rounding;   /* 2^(input2_shift - 1) */
    int32_t input2_shift;      /* right shift in [1, 31]; 0: input2's factor is 1/2 as well */
    int32_t output_multiplier; /* in [2^30, 2^31) */
    int32_t output_rounding;   /* 2^(output_shift - 1) + output_offset * 2^output_shift */
    int32_t output_shift;      /* right shift in [1, 31] */
    tm_activation activation;
} tm_add_s8_dsp_params;

tm_status tm_add_s8_dsp(const tm_context *ctx, const tm_add_s8_dsp_params *params,
                        const tm_dims *input1_dims, const int8_t *input1,
                        const tm_dims *input2_dims, const int8_t *input2,
                        const tm_dims *output_dims, int8_t *output);
int32_t tm_add_s8_dsp_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

#endif /* TM_DSP_ADD_S8_H */
