/*
 * dsp/tm_mul_s8.h - MUL of int8 tensors with 32-bit arithmetic (Armv7E-M / Armv8-M DSP), for inputs of the output's
 * size and for the per-channel broadcast of squeeze-and-excitation ([pixels, C] times a [C] gate). Bit-exact with
 * the portable tm_mul_s8 (LiteRT's reference_integer_ops::MulElementwise, tm_nn.h).
 *
 * LiteRT requantizes the product p = (x1 + input1_offset) * (x2 + input2_offset), |p| <= 2^16, with
 * MultiplyByQuantizedMultiplier(p, m, shift): SaturatingRoundingDoublingHighMul(p * 2^left, m), then a rounding
 * divide by 2^e (half away from zero), left = max(shift, 0), e = max(-shift, 0). With x = p * 2^(left + 1):
 * - SaturatingRoundingDoublingHighMul(p * 2^left, m) = floor((x * m + 2^31) / 2^32) = SMMULR(x, m) (m >= 0, so
 *   nothing saturates), and SMMLAR adds an accumulator to that same value;
 * - the rounding divide by e >= 1 is (t + 2^(e-1) - [t < 0]) >> e; t < 0 implies x < 0, and when x < 0 but t = 0
 *   the -1 still rounds to 0, so [x < 0] (x >> 31) stands in for [t < 0]; the output offset enters the
 *   accumulator as output_offset * 2^e, a multiple of the divisor:
 *   y = (SMMLAR(x, m, 2^(e-1) + output_offset * 2^e) + (x >> 31)) >> e; with e = 0, y = SMMLAR(x, m, output_offset).
 * The compiler checks this on every p in [-2^16, 2^16] against LiteRT's formula before choosing these kernels.
 * Output i is written after input i is read, in increasing order: the output may overlay the output-sized input.
 */
#ifndef TM_DSP_MUL_S8_H
#define TM_DSP_MUL_S8_H

#include "tm_nn.h"

typedef struct {
    int32_t input1_offset; /* -zero_point of input1, in [-127, 128] */
    int32_t input2_offset; /* -zero_point of input2, in [-127, 128] */
    int32_t product_shift; /* max(shift, 0) + 1, in [1, 14]: x = p * 2^product_shift */
    int32_t multiplier;    /* QuantizeMultiplier's, in [0, 2^31) */
    int32_t rounding;      /* 2^(right_shift - 1) + output_offset * 2^right_shift; right_shift 0: output_offset */
    int32_t right_shift;   /* max(-shift, 0), in [0, 31] */
    tm_activation activation;
} tm_mul_s8_dsp_params;

/* input1, input2, output: the same number of elements. */
tm_status tm_mul_s8_dsp(const tm_context *ctx, const tm_mul_s8_dsp_params *params,
                        const tm_dims *input1_dims, const int8_t *input1,
                        const tm_dims *input2_dims, const int8_t *input2,
                        const tm_dims *output_dims, int8_t *output);
int32_t tm_mul_s8_dsp_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* input1 and output [N, H, W, C], input2 (the gate) {1, 1, 1, C}: output[.., c] = input1[.., c] * input2[c]. */
tm_status tm_mul_s8_dsp_channel(const tm_context *ctx, const tm_mul_s8_dsp_params *params,
                                const tm_dims *input1_dims, const int8_t *input1,
                                const tm_dims *input2_dims, const int8_t *input2,
                                const tm_dims *output_dims, int8_t *output);
int32_t tm_mul_s8_dsp_channel_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

#endif /* TM_DSP_MUL_S8_H */
