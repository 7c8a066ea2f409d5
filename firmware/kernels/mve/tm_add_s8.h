/*
 * mve/tm_add_s8.h - ADD of same-shape int8 tensors with Helium (MVE, Cortex-M55), four int32 lanes per step.
 * Bit-exact with the portable tm_add_s8 (LiteRT's reference int8 ADD, tm_nn.h); compiled only where
 * __ARM_FEATURE_MVE is set.
 *
 * VQRDMULH is gemmlowp's SaturatingRoundingDoublingHighMul exactly (2ab + 2^31, high word, saturating), and
 * VQRDMLAH adds an accumulator to that same value. The compiler passes the inputs so that input1's rescale
 * factor is exactly 1/2 (see dsp/tm_add_s8.h), whose rescale of v1 = input1 + offset is v1 * 2^19 exactly.
 * RoundingDivideByPOT by e >= 1 (half away from zero) is VRSHL by -e (half up) applied to x - [x < 0]: the two
 * agree except on negative ties, which the -1 moves down. For the output the sign of the sum stands in for the
 * sign of the product (a negative sum gives a product <= 0, and 0 - 1 still rounds to 0), and the output offset
 * enters VQRDMLAH's accumulator as output_offset * 2^e, a multiple of the divisor.
 */
#ifndef TM_MVE_ADD_S8_H
#define TM_MVE_ADD_S8_H

#include "tm_nn.h"

typedef struct {
    int32_t input1_offset;     /* input1_offset * 2^19; with input2_shift == 0 (input1_offset + input2_offset) * 2^19 */
    int32_t input2_offset;     /* input2_offset * 2^20 */
    int32_t input2_multiplier; /* input2's (multiplier, shift): multiplier in [2^30, 2^31) */
    int32_t input2_shift;      /* right shift in [1, 31]; 0: input2's factor is 1/2 as well */
    int32_t output_multiplier; /* in [2^30, 2^31) */
    int32_t output_offset;     /* output_offset * 2^output_shift */
    int32_t output_shift;      /* right shift in [1, 31] */
    tm_activation activation;
} tm_add_s8_mve_params;

tm_status tm_add_s8_mve(const tm_context *ctx, const tm_add_s8_mve_params *params,
                        const tm_dims *input1_dims, const int8_t *input1,
                        const tm_dims *input2_dims, const int8_t *input2,
                        const tm_dims *output_dims, int8_t *output);
int32_t tm_add_s8_mve_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

#endif /* TM_MVE_ADD_S8_H */
