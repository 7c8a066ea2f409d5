/*
 * dsp/tm_transpose_conv_s8.h - TRANSPOSE_CONV (int8) for cores with the DSP extension, bit-exact with the
 * portable tm_transpose_conv_s8 (same parameters, tm_nn.h). Per output pixel, the input pixels that reach it
 * are widened once to int16 (input offset added) into a column in scratch, which every output channel then
 * multiplies with its filter taps two at a time (SMLAD).
 */
#ifndef TM_DSP_TRANSPOSE_CONV_S8_H
#define TM_DSP_TRANSPOSE_CONV_S8_H

#include "tm_nn.h"

/* Scratch: one column slot per filter tap, each round_up(c_in, 2) int16 values and an int32 tap offset. */
tm_status tm_transpose_conv_s8_dsp(const tm_context *ctx, const tm_transpose_conv_params *params,
                                   const tm_quant *quant,
                                   const tm_dims *input_dims, const int8_t *input,
                                   const tm_dims *filter_dims, const int8_t *filter,
                                   const int32_t *bias,
                                   const tm_dims *output_dims, int8_t *output);
int32_t tm_transpose_conv_s8_dsp_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                                 const tm_dims *output_dims);

#endif /* TM_DSP_TRANSPOSE_CONV_S8_H */
