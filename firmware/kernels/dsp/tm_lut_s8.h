/*
 * dsp/tm_lut_s8.h - the int8 lookup-table activations (LOGISTIC, TANH, ELU, HARD_SWISH, LEAKY_RELU) four elements
 * per step for Armv7E-M / Armv8-M: one 32-bit load of four inputs, four table loads, one 32-bit store. The same
 * tm_lut_params and results as the portable tm_lut_s8. Each word is written after it is read, words in
 * increasing order: the output may overlay the input.
 */
#ifndef TM_DSP_LUT_S8_H
#define TM_DSP_LUT_S8_H

#include "tm_nn.h"

tm_status tm_lut_s8_dsp(const tm_context *ctx, const tm_lut_params *params,
                        const tm_dims *input_dims, const int8_t *input,
                        const tm_dims *output_dims, int8_t *output);
int32_t tm_lut_s8_dsp_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

#endif /* TM_DSP_LUT_S8_H */
