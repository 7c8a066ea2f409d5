/*
 * DEPTHWISE_CONV_2D (int8) for Cortex-M55 Helium (MVE), bit-exact with LiteRT's reference kernel.
 *
 * Vectorised across output pixels, not channels: MVE has no vector-by-vector multiply-accumulate, but
 * VMLA (vector by scalar) does 4 MACs in one instruction, so one channel's weight is the scalar and the
 * 4 lanes are 4 neighbouring output pixels of one row. Input rows are first copied, with their padding,
 * into a channel-planar row buffer in the scratch memory, so that the 4 inputs of a tap are 4 adjacent
 * bytes (one widening load) and padded taps need no test.
 *
 * Row buffer (scratch, ctx->buf): kh slots, each one padded input row of all input channels:
 *   slot[ic][phase][j] = input column (phase + j * stride.w - padding.w) of channel ic (the input zero
 *   point where that column lies in the padding), phase in [0, stride.w), j in [0, row_pixels),
 *   row_pixels = round_up(w_out, 4) + ((kw - 1) * dilation.w) / stride.w + 1.
 * Splitting the columns by phase makes the inputs of a strided tap contiguous too.
 *
 * Arguments as tm_depthwise_conv2d_s8 (tm_nn.h), except:
 * - filter: re-laid-out per output channel, [c_out][kh][kw] int8 (filter_dims stays {1, kh, kw, c_out});
 * - channel_data: 4 int32 per output channel oc:
 *     [0] bias[oc] + input_offset * sum(filter[.., .., oc])  (the input offset folded in; wraps as int32)
 *     [1] multiplier[oc]   [2] max(shift[oc], 0)   [3] min(shift[oc], 0)  (tm_nn.h requantization)
 *   The kernel reads raw input bytes (padding holds the zero point), so padded taps add
 *   filter * zero_point, which the folded bias cancels exactly (all int32 sums wrap identically).
 * The variants differ only in the window shapes they take:
 * - tm_depthwise_conv2d_s8_mve_3x3_s1, _3x3_s2: kh = kw = 3, column stride 1 (_s1) or 2 (_s2), row stride 1 or
 *   2, dilation 1 (one entry point per column stride: a model links only the unrolled rows it calls);
 * - tm_depthwise_conv2d_s8_mve: any window with kh <= TM_DW_MVE_MAX_KH, any stride and dilation.
 * Both take any ch_mult >= 1 (output channel oc reads input channel oc / ch_mult).
 */
#ifndef TM_DEPTHWISE_CONV2D_S8_MVE_H
#define TM_DEPTHWISE_CONV2D_S8_MVE_H

#include "tm_nn.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TM_DW_MVE_MAX_KH 16 /* row-buffer slots are tracked in a fixed array (no VLA) */

tm_status tm_depthwise_conv2d_s8_mve_3x3_s1(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                            const int32_t *channel_data,
                                            const tm_dims *input_dims, const int8_t *input,
                                            const tm_dims *filter_dims, const int8_t *filter,
                                            const tm_dims *output_dims, int8_t *output);

tm_status tm_depthwise_conv2d_s8_mve_3x3_s2(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                            const int32_t *channel_data,
                                            const tm_dims *input_dims, const int8_t *input,
                                            const tm_dims *filter_dims, const int8_t *filter,
                                            const tm_dims *output_dims, int8_t *output);

tm_status tm_depthwise_conv2d_s8_mve(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                     const int32_t *channel_data,
                                     const tm_dims *input_dims, const int8_t *input,
                                     const tm_dims *filter_dims, const int8_t *filter,
                                     const tm_dims *output_dims, int8_t *output);

/* Scratch bytes of both variants: kh * c_in * stride.w * row_pixels (the row buffer above).
 * Portable C (the compiler's scratch_bytes mirrors it; tests call it on the host). */
int32_t tm_depthwise_conv2d_s8_mve_get_buffer_size(const tm_depthwise_conv2d_params *params,
                                                   const tm_dims *input_dims, const tm_dims *filter_dims,
                                                   const tm_dims *output_dims);

/* Channel-lane variant, for small images with many channels (DS-CNN, late MobileNet layers): lanes are 4
 * channels of one output pixel, each channel's window gathered and reduced with VMLADAV.S8 (see the C file).
 * The output rows are computed in bands of band_rows rows (clamped to [1, h_out]); the scratch is a ring of
 * the padded input rows one band reads, refilled per band, per-channel planar:
 *   ring[c][r][x] = padded input row (oy0 * stride.h + r), column x of channel c, for the band starting at
 *   output row oy0, r in [0, hp), x in [0, wp) (the input zero point in the padding), with
 *   hp = (band - 1) * stride.h + (kh - 1) * dilation.h + 1, wp = (w_out - 1) * stride.w + (kw - 1) * dilation.w + 1.
 * band_rows = h_out keeps the whole padded input (fastest: no row is filled twice); a small band keeps the
 * scratch to a few rows (the overlap of consecutive bands, (kh - 1) * dilation.h + 1 - stride.h rows, is
 * filled again per band). band_rows < 0: channel groups of -band_rows channels (a multiple of 4, at most c_in):
 * per batch and group, the group's whole padded planes (hp for band h_out), then the group's outputs. A group
 * writes only its own channels' bytes, all of them copied already, so the output may lie exactly over the
 * input (same address, h_out * w_out <= h_in * w_in).
 * Takes ch_mult == 1, c_in % 4 == 0, kh * kw <= 16, any stride, dilation and padding whose padded window
 * offsets fit a byte: (kh - 1) * dilation.h * wp + (kw - 1) * dilation.w <= 255, and 7 * hp * wp <= 65535.
 * tm_depthwise_conv2d_s8_mve_cl_large takes the windows of 17 to 16 * TM_DW_CL_MAX_CHUNKS taps (5x5, 7x7): chunks
 * of 16 taps (taps 16 t .. 16 t + 15, row-major), each gathered from the plane row of its first tap, whose taps'
 * offsets from that row's start must fit a byte; the sums of the chunks accumulate (VMLADAVA).
 * Their own layouts (chunks = ceil(kh * kw / 16), 1 for tm_depthwise_conv2d_s8_mve_cl):
 * - filter: [c / 4][chunk][c % 4][16] int8: channel c's taps ky * kw + kx of the chunk, zeros after the last
 *   tap ([c][16] for one chunk);
 * - channel_data: 20 int32 per group of 4 channels c0 .. c0 + 3 (lane j = channel c0 + j):
 *     [0..3] folded bias (as above)  [4..7] multiplier  [8..11] min(shift, 0), which must be < 0 (every
 *     channel shifts right: the compiler picks this variant only then)
 *     [12..15] activation.min  [16..19] activation.max (repeated per group: one base register for all).
 * Scratch (tm_depthwise_conv2d_s8_mve_cl_get_buffer_size, same band_rows): c_in * hp * wp bytes, the ring
 * (channel groups: -band_rows * hp * wp bytes). */
tm_status tm_depthwise_conv2d_s8_mve_cl(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                        const int32_t *channel_data, int32_t band_rows,
                                        const tm_dims *input_dims, const int8_t *input,
                                        const tm_dims *filter_dims, const int8_t *filter,
                                        const tm_dims *output_dims, int8_t *output);

#define TM_DW_CL_MAX_CHUNKS 4 /* up to 64 taps: 7x7, 8x8 */

tm_status tm_depthwise_conv2d_s8_mve_cl_large(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                              const int32_t *channel_data, int32_t band_rows,
                                              const tm_dims *input_dims, const int8_t *input,
                                              const tm_dims *filter_dims, const int8_t *filter,
                                              const tm_dims *output_dims, int8_t *output);

/* Scratch of both channel-lane variants. */
int32_t tm_depthwise_conv2d_s8_mve_cl_get_buffer_size(const tm_depthwise_conv2d_params *params, int32_t band_rows,
                                                      const tm_dims *input_dims, const tm_dims *filter_dims,
                                                      const tm_dims *output_dims);

#ifdef __cplusplus
}
#endif

#endif /* TM_DEPTHWISE_CONV2D_S8_MVE_H */
