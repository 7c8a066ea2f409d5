/*
 * tm_depthwise_conv2d_s8.h - DEPTHWISE_CONV_2D on the dsp path (Armv7E-M / Armv8-M DSP extension).
 *
 * Variants, chosen per layer by toolchain/compiler/ops/dsp/depthwise_conv2d.py:
 *   tm_depthwise_conv2d_s8_dsp_3x3s1  3x3 filter, stride 1 (both axes), dilation 1, ch_mult 1
 *   tm_depthwise_conv2d_s8_dsp_3x3s2  3x3 filter, stride 2 (both axes), dilation 1, ch_mult 1
 *   tm_depthwise_conv2d_s8_dsp_kxks1  kh x kw filter, 2 <= kh, kw <= TM_DWK_MAX (5x5, 7x7, 3x5, ...), stride 1
 *   tm_depthwise_conv2d_s8_dsp_kxks2  the same, stride 2
 * Every other shape (other filter sizes, dilation, ch_mult > 1) uses the portable tm_depthwise_conv2d_s8.
 *
 * How they work: input rows are widened to int16 with the input offset already added and stored channel
 * by channel ("lines": line[c][x], x = input column + padding.w) in the scratch buffer, the padding as 0
 * (which is exactly the input zero point after the offset), so border pixels need no special case. Each
 * output channel then runs along its lines with its 3x3 weights in registers: a row of three taps of two
 * neighbouring outputs takes four SMLAD/SMLAxy instructions (six MACs). Small images keep whole planes of
 * a group of channels (each channel then runs down the whole output with its weights loaded once), large
 * ones a ring of three input rows of every channel; lines run along the longer output axis (the image's
 * columns when h_out > w_out).
 * The KxK variants work the same way with a window of kr lines (the filter's rows; its columns when transposed)
 * by kc taps along them (the other extent, made odd: an even one gets a zero tap after the last): a filter row of
 * kc = 2M + 1 taps of two neighbouring outputs takes 2M + 2 SMLAD/SMLAxy instructions (2 kc MACs), the weights
 * read from memory per step; the ring has kr rows.
 *
 * `packed`: TM_DW3X3_WORDS int32 words per output channel c, in channel order:
 *   [0..5]  for filter row ky = 0, 1, 2: two words (s16x2, lane 0 first)
 *           { 2*w[ky][0][c], 2*w[ky][1][c] } and { 2*w[ky][1][c], 2*w[ky][2][c] };
 *           transposed (w[kx][ky] in place of w[ky][kx]) when output h > output w: the kernel's lines then
 *           run down the image's columns, the longer axis
 *   [6]     2 * bias[c] (0 without a bias)
 *   [7]     the requantization multiplier of c (tm_nn.h convention, in [2^30, 2^31) or 0)
 *   [8]     2^(e-1) + output_offset * 2^e, where e = -shift[c] >= 1
 *   [9]     e
 * The weights and the bias are doubled so that the accumulator holds 2*acc: SMMULR(2*acc, multiplier) is
 * then exactly TFLite's SaturatingRoundingDoublingHighMul(acc, multiplier). The compiler emits these
 * variants only where that is exact: shift <= -1 for every channel, |bias| + 255 * sum|w| < 2^29 and
 * (|output_offset| + 1) * 2^e < 2^30 (so neither 2*acc nor the rounding sum can overflow); other layers
 * use the portable kernel.
 * params: input_offset, activation and padding are read (output_offset is folded into [8]); stride,
 * dilation and ch_mult must match the variant.
 * KxK `packed`: kr * (kc - 1) + 4 int32 words per output channel c: per line r (filter row r, or column r when
 *   transposed) the kc - 1 words A_0, B_1, A_1, B_2, .., A_M-1, B_M with A_j = { 2 w[2j], 2 w[2j + 1] } and
 *   B_j = { 2 w[2j - 1], 2 w[2j] } (w: the line's taps, w[kc - 1] = 0 for an even filter extent), then the four
 *   words [6..9] above (2 * bias, multiplier, rounding, e). The 3x3 layout is this one with kr = kc = 3.
 *   filter_dims: {1, kh, kw, c}.
 * `scratch_budget`: the scratch bytes the layout may use (the compiler passes the arena bytes free at the
 * layer). Planes of every channel or of groups of channels within min(budget, 4096), else the ring within
 * the budget, else the leanest layout (one channel's planes or the ring, the smaller): budget 0 gives the
 * leanest. The kernel and its _get_buffer_size must get the same value (ctx->size must hold that size).
 */
#ifndef TM_DSP_DEPTHWISE_CONV2D_S8_H
#define TM_DSP_DEPTHWISE_CONV2D_S8_H

#include "tm_nn.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TM_DW3X3_WORDS 10
#define TM_DWK_MAX 7 /* the KxK variants' largest filter extent (the ring's slots are a fixed array) */

tm_status tm_depthwise_conv2d_s8_dsp_3x3s1(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                           const int32_t *packed, int32_t scratch_budget,
                                           const tm_dims *input_dims, const int8_t *input,
                                           const tm_dims *output_dims, int8_t *output);
/* The scratch of the layout chosen within scratch_budget (above). */
int32_t tm_depthwise_conv2d_s8_dsp_3x3s1_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                                         const tm_dims *output_dims, int32_t scratch_budget);

tm_status tm_depthwise_conv2d_s8_dsp_3x3s2(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                           const int32_t *packed, int32_t scratch_budget,
                                           const tm_dims *input_dims, const int8_t *input,
                                           const tm_dims *output_dims, int8_t *output);
int32_t tm_depthwise_conv2d_s8_dsp_3x3s2_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                                         const tm_dims *output_dims, int32_t scratch_budget);

tm_status tm_depthwise_conv2d_s8_dsp_kxks1(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                           const int32_t *packed, int32_t scratch_budget,
                                           const tm_dims *input_dims, const int8_t *input,
                                           const tm_dims *filter_dims, const tm_dims *output_dims,
                                           int8_t *output);
int32_t tm_depthwise_conv2d_s8_dsp_kxks1_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                                         const tm_dims *output_dims, int32_t scratch_budget);

tm_status tm_depthwise_conv2d_s8_dsp_kxks2(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                           const int32_t *packed, int32_t scratch_budget,
                                           const tm_dims *input_dims, const int8_t *input,
                                           const tm_dims *filter_dims, const tm_dims *output_dims,
                                           int8_t *output);
int32_t tm_depthwise_conv2d_s8_dsp_kxks2_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                                         const tm_dims *output_dims, int32_t scratch_budget);

#ifdef __cplusplus
}
#endif

#endif /* TM_DSP_DEPTHWISE_CONV2D_S8_H */
