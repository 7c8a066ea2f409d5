/*
 * mve/tm_lut_s8.h - the int8 lookup-table activations (LOGISTIC, TANH, ELU, HARD_SWISH, LEAKY_RELU) with Helium
 * (MVE, Cortex-M55): sixteen table entries per gather load (VLDRB gather, the input bytes as unsigned offsets,
 * which is the table's (uint8_t)x indexing). The same tm_lut_params and results as the portable tm_lut_s8;
 * compiled only where __ARM_FEATURE_MVE is set. Each block of sixteen is written after it is read, blocks in
 * increasing order: the output may overlay the input.
 */
#ifndef TM_MVE_LUT_S8_H
#define TM_MVE_LUT_S8_H

#include "tm_nn.h"

tm_status tm_lut_s8_mve(const tm_context *ctx, const tm_lut_params *params,
                        const tm_dims *input_dims, const int8_t *input,
                        const tm_dims *output_dims, int8_t *output);
int32_t tm_lut_s8_mve_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

#endif /* TM_MVE_LUT_S8_H */
