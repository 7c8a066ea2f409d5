/*
 * mve/tm_avg_pool2d_s8.h - AVERAGE_POOL_2D (int8) with Helium (MVE, Cortex-M55), bit-exact with the portable
 * tm_avg_pool2d_s8 (same parameters, tm_nn.h); compiled only where __ARM_FEATURE_MVE is set.
 * Window sums of 16 channels per step in int16 lanes (exact up to TM_AVG_POOL2D_MVE_MAX_COUNT inputs; larger
 * filters are refused and keep the portable kernel). The division by the window's count d (half away from zero)
 * is floor((|sum| + d / 2) * M / 2^31) with M = ceil(2^31 / d), with the sign of the sum put back: exact because
 * (|sum| + d / 2) * d < 2^31 (|sum| <= 2^15, d <= 256).
 */
#ifndef TM_MVE_AVG_POOL2D_S8_H
#define TM_MVE_AVG_POOL2D_S8_H

#include "tm_nn.h"

#define TM_AVG_POOL2D_MVE_MAX_COUNT 256

tm_status tm_avg_pool2d_s8_mve(const tm_context *ctx, const tm_avg_pool2d_params *params,
                               const tm_dims *input_dims, const int8_t *input,
                               const tm_dims *output_dims, int8_t *output);
int32_t tm_avg_pool2d_s8_mve_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

#endif /* TM_MVE_AVG_POOL2D_S8_H */
