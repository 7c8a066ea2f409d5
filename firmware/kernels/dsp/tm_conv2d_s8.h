/*
 * CONV_2D on the dsp path (Armv7E-M / Armv8-M DSP extension: Cortex-M4, M7, M33).
 *
 * Both variants are one GEMM: for a block of two output pixels, the pixels' input columns (the filter
 * window, kh*kw*c_in values) are widened to int16 in the scratch buffer, then every pair of output
 * channels is accumulated against them with SMLAD (2 pixels x 2 channels per step, 4 depth values per
 * step). The compiler prepares the constants (toolchain/compiler/ops/dsp/conv2d.py):
 *
 * - depth = kh * kw * c_in, padded_depth = depth rounded up to a multiple of 4,
 *   padded_channels = c_out rounded up to a multiple of 2.
 * - packed_filter, int8, padded_channels * padded_depth bytes, word-aligned: for each channel pair
 *   (2j, 2j+1) and each group g of 4 depth values, 4 bytes of channel 2j then 4 bytes of channel 2j+1,
 *   in the natural [ky][kx][c_in] order; the padding (depth and the extra channel) is zero.
 * - table, int32, 8 words per channel pair j (channels 2j, 2j+1), word-aligned:
 *   [0..1] folded bias: bias[c] + input_offset * sum(filter[c]) (wrapping), 0 for the extra channel. The
 *          kernel then multiplies the raw int8 inputs: a padded input position is filled with the input zero
 *          point (-input_offset), whose product with the filter cancels its share of the folded sum exactly
 *          (mod 2^32, as LiteRT's int32 accumulator).
 *   [2..3] multiplier[c] (as quant->multiplier);
 *   [4..5] with e = -shift[c]: 2^(e-2) + output_offset * 2^(e-1) (wrapping to int32);
 *   [6..7] e - 1.
 *   Words 4..7 are read only when every real channel has shift in [-TM_CONV_FAST_MAX_E, -2] (the fast
 *   exact requantization; the compiler writes 0 otherwise, and the kernel uses quant and output_offset).
 * - quant: per_channel must be 1, multiplier and shift have padded_channels entries (the extra channel's
 *   entries must be a valid (multiplier, shift)); the table must agree with it.
 * - params->input_offset is used only for the padding value; params->stride/padding/dilation,
 *   activation and output_offset as in tm_nn.h.
 *
 * Variants:
 * - tm_conv2d_s8_dsp_1x1: kh = kw = 1, no padding, any stride: widens straight from the input.
 * - tm_conv2d_s8_dsp_im2col: any kernel size, stride, padding, dilation (also few input channels: the
 *   whole window is one column, so a 10x4x1 filter is a 40-deep dot product).
 */
#ifndef TM_CONV2D_S8_DSP_H
#define TM_CONV2D_S8_DSP_H

#include "tm_nn.h"

/* The largest right shift e of the fast requantization (its offset-folded high word fits int32). */
#define TM_CONV_FAST_MAX_E 22

#ifdef __cplusplus
extern "C" {
#endif

tm_status tm_conv2d_s8_dsp_1x1(const tm_context *ctx, const tm_conv2d_params *params, const tm_quant *quant,
                               const tm_dims *input_dims, const int8_t *input,
                               const tm_dims *filter_dims, const int8_t *packed_filter,
                               const int32_t *table,
                               const tm_dims *output_dims, int8_t *output);
/* 4 * padded_depth bytes: two int16 columns. */
int32_t tm_conv2d_s8_dsp_1x1_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                             const tm_dims *output_dims);

tm_status tm_conv2d_s8_dsp_im2col(const tm_context *ctx, const tm_conv2d_params *params, const tm_quant *quant,
                                  const tm_dims *input_dims, const int8_t *input,
                                  const tm_dims *filter_dims, const int8_t *packed_filter,
                                  const int32_t *table,
                                  const tm_dims *output_dims, int8_t *output);
/* 5 * padded_depth bytes: two int16 columns and one int8 column being gathered. */
int32_t tm_conv2d_s8_dsp_im2col_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                                const tm_dims *output_dims);

#ifdef __cplusplus
}
#endif

#endif /* TM_CONV2D_S8_DSP_H */
