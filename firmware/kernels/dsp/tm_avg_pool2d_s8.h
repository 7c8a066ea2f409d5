/*
 * dsp/tm_avg_pool2d_s8.h - AVERAGE_POOL_2D (int8) for cores with the DSP extension, bit-exact with the portable
 * tm_avg_pool2d_s8 (same parameters, tm_nn.h). Windows sum four channels per 32-bit load in int16 lanes
 * (SXTAB16), exact while a window holds at most TM_AVG_POOL2D_DSP_MAX_COUNT elements (256 * -128 = INT16_MIN);
 * larger filters are refused (TM_ARG_ERROR) and keep the portable kernel (the compiler checks).
 */
#ifndef TM_DSP_AVG_POOL2D_S8_H
#define TM_DSP_AVG_POOL2D_S8_H

#include "tm_nn.h"

#define TM_AVG_POOL2D_DSP_MAX_COUNT 256

tm_status tm_avg_pool2d_s8_dsp(const tm_context *ctx, const tm_avg_pool2d_params *params,
                               const tm_dims *input_dims, const int8_t *input,
                               const tm_dims *output_dims, int8_t *output);
int32_t tm_avg_pool2d_s8_dsp_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

#endif /* TM_DSP_AVG_POOL2D_S8_H */
