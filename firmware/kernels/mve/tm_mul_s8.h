/*
 * mve/tm_mul_s8.h - MUL of int8 tensors with Helium (MVE, Cortex-M55), sixteen elements a step, for inputs of the
 * output's size and for the per-channel broadcast of squeeze-and-excitation ([pixels, C] times a [C] gate).
 * Bit-exact with the portable tm_mul_s8 (LiteRT's reference_integer_ops::MulElementwise, tm_nn.h); compiled
 * only where __ARM_FEATURE_MVE is set.
 *
 * The bytes are widened to int16 with their offsets (VMOVLB/VMOVLT, even and odd lanes), multiplied into int32
 * products p, |p| <= 2^16 (VMULLB/VMULLT), requantized, and narrowed back in order with saturation (VQMOVNB/T):
 * the saturating narrow is the clamp to int8. LiteRT's MultiplyByQuantizedMultiplier(p, m, shift) is
 * SaturatingRoundingDoublingHighMul(p * 2^left, m), which VQRDMULH is exactly (VQRDMLAH adds an accumulator to
 * that same value), then a rounding divide by 2^e (half away from zero), left = max(shift, 0), e = max(-shift, 0).
 * For e >= 1 (so left = 0) it is VRSHL by -e (half up) applied to t - [t < 0]: they differ only on negative ties,
 * which the -1 moves down; [p < 0] stands in for [t < 0] (m >= 0: t < 0 implies p < 0, and p < 0 with t = 0 still
 * rounds to 0), and the output offset enters the accumulator as output_offset * 2^e, a multiple of the divisor.
 * The compiler checks this formula on every p in [-2^16, 2^16] before choosing these kernels.
 * Each block of sixteen outputs is written after its inputs are read, blocks in increasing order: the output may
 * overlay the output-sized input.
 */
#ifndef TM_MVE_MUL_S8_H
#define TM_MVE_MUL_S8_H

#include "tm_nn.h"

typedef struct {
    int32_t input1_offset; /* -zero_point of input1, in [-127, 128] */
    int32_t input2_offset; /* -zero_point of input2, in [-127, 128] */
    int32_t left_shift;    /* max(shift, 0), in [0, 14]; 0 when right_shift >= 1 */
    int32_t multiplier;    /* QuantizeMultiplier's, in [0, 2^31) */
    int32_t output_offset; /* output zero point * 2^right_shift */
    int32_t right_shift;   /* max(-shift, 0), in [0, 31] */
    tm_activation activation;
} tm_mul_s8_mve_params;

/* input1, input2, output: the same number of elements. */
tm_status tm_mul_s8_mve(const tm_context *ctx, const tm_mul_s8_mve_params *params,
                        const tm_dims *input1_dims, const int8_t *input1,
                        const tm_dims *input2_dims, const int8_t *input2,
                        const tm_dims *output_dims, int8_t *output);
int32_t tm_mul_s8_mve_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* input1 and output [N, H, W, C], input2 (the gate) {1, 1, 1, C}: output[.., c] = input1[.., c] * input2[c]. */
tm_status tm_mul_s8_mve_channel(const tm_context *ctx, const tm_mul_s8_mve_params *params,
                                const tm_dims *input1_dims, const int8_t *input1,
                                const tm_dims *input2_dims, const int8_t *input2,
                                const tm_dims *output_dims, int8_t *output);
int32_t tm_mul_s8_mve_channel_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

#endif /* TM_MVE_MUL_S8_H */
