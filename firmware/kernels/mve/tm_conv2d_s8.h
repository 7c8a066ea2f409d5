/*
 * tm_conv2d_s8.h (mve) - CONV_2D for Cortex-M55 with MVE (Helium), bit-exact with the portable
 * tm_conv2d_s8 (LiteRT BUILTIN_REF). toolchain/compiler/ops/mve/conv2d.py chooses the variant per layer
 * and prepares the weights at compile time.
 *
 * Both variants are one GEMM: every output pixel is a row of K = kh * kw * c_in input bytes (in filter
 * order ky, kx, ic), dotted with each output channel's K filter bytes by VMLADAVA.S8 (16 MACs per
 * instruction), two pixels by four output channels at a time. With K <= 32 the pair of rows stays in
 * registers across the channel blocks (and a stride-1 1x1 runs all its pairs in one assembly loop).
 * - tm_conv2d_s8_mve_1x1: 1x1 filters, no padding, any stride: a pixel's row is its input pixel (c_in
 *   contiguous bytes), read in place with K <= 32 (held in registers, no scratch); with K > 32, where the
 *   output shares bytes with the input, the pair of rows is copied to the scratch (2 * k16 bytes) first.
 * Both read a pair's input (registers or scratch) before they write its outputs, in output raster order (a
 * 1x1's pairs run on across batches, the im2col's restart per batch): the output may lie over the input as
 * far as no pair's outputs reach input bytes a later pair reads (toolchain/compiler/ops/mve/conv2d.py).
 * - tm_conv2d_s8_mve_im2col: any filter, stride, padding and dilation: the rows of two output pixels are
 *   gathered into the scratch buffer (positions in the padding get the input zero point), then the same GEMM.
 *
 * Compile-time data (toolchain/compiler/ops/mve/conv2d.py): ONE int32 stream, which quant->blocks points to;
 * packed_filter is the same array (the kernels read everything through quant->blocks, so one pointer walks
 * a block's weights and constants in load order). Per block of 4 output channels (c_out4 / 4 blocks, c_out4
 * = c_out rounded up to a multiple of 4; padding channels are all 0), k16 + 16 words:
 * - the block's weights, [k16 / 16][4][16] int8 (k16 = K rounded up to a multiple of 16): chunk s holds
 *   one 16-byte vector per channel. Each row of K bytes is cut into chunks of 16 from the end, so the FIRST
 *   chunk holds the r = K - (k16 - 16) leftover bytes (1..16) in lanes 0..r-1 and zeros above.
 * - the block's constants, four vectors of the channels' lanes: bias'[4] = bias[c] + input_offset *
 *   sum_k filter[c][k] (wrapped to int32: the kernel accumulates the raw int8 input, so the input offset is
 *   folded in here), multiplier[4], left_shift[4] = max(shift, 0), neg_right_shift[4] = min(shift, 0).
 * - params: as tm_conv2d_s8's; input_offset is only used for the padding value (-input_offset) of the
 *   im2col variant, since the bias already holds its contribution.
 */
#ifndef TM_CONV2D_S8_MVE_H
#define TM_CONV2D_S8_MVE_H

#include "tm_nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The GEMM routines (tm_conv2d_s8.c). The compiler names the one a layer needs in its quant, so a model links
 * only those it calls; the kernels refuse a routine that does not fit the layer:
 * - K <= 16: tm_conv2d_mve_gemm_held1_*; 16 < K <= 32: tm_conv2d_mve_gemm_held2_* (rows held in registers);
 * - K > 32: tm_conv2d_mve_gemm_rows_* (any K), or tm_conv2d_mve_gemm_rows_whole_* when K % 16 == 0;
 * - *_plain: every channel has left_shift 0 and a right shift (shift < 0); *_any: any shifts. */
typedef struct tm_conv2d_mve_gemm tm_conv2d_mve_gemm;
extern const tm_conv2d_mve_gemm tm_conv2d_mve_gemm_held1_plain, tm_conv2d_mve_gemm_held1_any;
extern const tm_conv2d_mve_gemm tm_conv2d_mve_gemm_held2_plain, tm_conv2d_mve_gemm_held2_any;
extern const tm_conv2d_mve_gemm tm_conv2d_mve_gemm_rows_plain, tm_conv2d_mve_gemm_rows_any;
extern const tm_conv2d_mve_gemm tm_conv2d_mve_gemm_rows_whole_plain, tm_conv2d_mve_gemm_rows_whole_any;

typedef struct {
    const int32_t *blocks; /* the stream: [ceil(c_out / 4)][weights k16 words; bias', multiplier, left_shift,
                              neg_right_shift x 4] */
    const tm_conv2d_mve_gemm *gemm; /* the GEMM routine for this layer's K and shifts (above) */
} tm_conv2d_mve_quant;

tm_status tm_conv2d_s8_mve_1x1(const tm_context *ctx, const tm_conv2d_params *params,
                               const tm_conv2d_mve_quant *quant,
                               const tm_dims *input_dims, const int8_t *input,
                               const tm_dims *filter_dims, const int8_t *packed_filter,
                               const tm_dims *output_dims, int8_t *output);
/* Scratch: 2 * k16 bytes when K = c_in > 32, else none. */
int32_t tm_conv2d_s8_mve_1x1_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                             const tm_dims *output_dims);

/* Scratch: 2 * k16 bytes (two gathered rows). */
tm_status tm_conv2d_s8_mve_im2col(const tm_context *ctx, const tm_conv2d_params *params,
                                  const tm_conv2d_mve_quant *quant,
                                  const tm_dims *input_dims, const int8_t *input,
                                  const tm_dims *filter_dims, const int8_t *packed_filter,
                                  const tm_dims *output_dims, int8_t *output);
int32_t tm_conv2d_s8_mve_im2col_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                                const tm_dims *output_dims);

#ifdef __cplusplus
}
#endif

#endif /* TM_CONV2D_S8_MVE_H */
