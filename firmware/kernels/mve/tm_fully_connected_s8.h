/*
 * mve/tm_fully_connected_s8.h - FULLY_CONNECTED (int8) for Cortex-M55 with MVE (Helium), bit-exact with the
 * portable tm_fully_connected_s8 (LiteRT's single rounding) and tm_fully_connected_s8_tflm (tflite-micro's
 * double rounding). VMLADAVA.S8 dots 16 weights per instruction; four output rows share each input vector,
 * and their four accumulators are requantized as one vector.
 *
 * The compiler prepares (toolchain/compiler/ops/mve/fully_connected.py):
 * - filter: the int8 weights [out_depth, accum_depth], each row zero-padded to k16 = accum_depth rounded up to
 *   a multiple of 16. Rows come in blocks of four (rows 4j .. 4j + 3): for each chunk of 16 columns, the block
 *   holds row 4j's 16 weights, then row 4j + 1's, 4j + 2's and 4j + 3's (64 bytes). The last out_depth % 4
 *   rows follow, each as its k16 weights in order.
 * - bias: bias[o] + input_offset * sum_k filter[o, k] (int32, wrapping), never NULL; params->input_offset is
 *   not used (filter_offset must be 0).
 * - quant: tm_fully_connected_fast_quant (dsp/tm_fully_connected_s8.h), with per_channel == 1.
 * Scratch: none (the input row is read in place, its last partial chunk with a zeroing predicated load).
 */
#ifndef TM_MVE_FULLY_CONNECTED_S8_H
#define TM_MVE_FULLY_CONNECTED_S8_H

#include "tm_nn.h"
#include "dsp/tm_fully_connected_s8.h"

/* LiteRT rounding (quant->exact != NULL). */
tm_status tm_fully_connected_s8_mve(const tm_context *ctx, const tm_fully_connected_params *params,
                                    const tm_fully_connected_fast_quant *quant,
                                    const tm_dims *input_dims, const int8_t *input,
                                    const tm_dims *filter_dims, const int8_t *filter,
                                    const int32_t *bias,
                                    const tm_dims *output_dims, int8_t *output);
/* tflite-micro rounding (quant->exact == NULL). */
tm_status tm_fully_connected_s8_mve_tflm(const tm_context *ctx, const tm_fully_connected_params *params,
                                         const tm_fully_connected_fast_quant *quant,
                                         const tm_dims *input_dims, const int8_t *input,
                                         const tm_dims *filter_dims, const int8_t *filter,
                                         const int32_t *bias,
                                         const tm_dims *output_dims, int8_t *output);
int32_t tm_fully_connected_s8_mve_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                                  const tm_dims *output_dims);

#endif /* TM_MVE_FULLY_CONNECTED_S8_H */
