/*
 * dsp/tm_mean_s8.h - MEAN over H and W (int8) for cores with the DSP extension, bit-exact with the portable
 * tm_mean_s8 (same parameters, tm_nn.h). Sums four channels per 32-bit load in int16 lanes (SXTAB16), folded
 * into int32 every 256 positions (where an int16 lane could overflow).
 */
#ifndef TM_DSP_MEAN_S8_H
#define TM_DSP_MEAN_S8_H

#include "tm_nn.h"

tm_status tm_mean_s8_dsp(const tm_context *ctx, const tm_mean_params *params,
                         const tm_dims *input_dims, const int8_t *input,
                         const tm_dims *output_dims, int8_t *output);
int32_t tm_mean_s8_dsp_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

#endif /* TM_DSP_MEAN_S8_H */
