/*
 * mve/tm_mean_s8.h - MEAN over H and W (int8) with Helium (MVE, Cortex-M55), bit-exact with the portable
 * tm_mean_s8 (same parameters, tm_nn.h); compiled only where __ARM_FEATURE_MVE is set.
 * Channel sums 16 per step in int16 lanes, folded into int32 every 256 positions; the requantization four lanes
 * at a time: VQRDMULH is SaturatingRoundingDoublingHighMul exactly, and RoundingDivideByPOT (half away from zero)
 * is VRSHL (half up) of x - [x < 0].
 */
#ifndef TM_MVE_MEAN_S8_H
#define TM_MVE_MEAN_S8_H

#include "tm_nn.h"

tm_status tm_mean_s8_mve(const tm_context *ctx, const tm_mean_params *params,
                         const tm_dims *input_dims, const int8_t *input,
                         const tm_dims *output_dims, int8_t *output);
int32_t tm_mean_s8_mve_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

#endif /* TM_MVE_MEAN_S8_H */
