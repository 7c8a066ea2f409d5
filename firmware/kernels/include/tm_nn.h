/*
 * tm_nn.h - int8 neural-network kernels of tinyml-toolchain (CMSIS-NN-style API).
 *
 * Every kernel is bit-exact with LiteRT's BUILTIN_REF (reference) kernels; FULLY_CONNECTED also has
 * tflite-micro's rounding (tm_fully_connected_s8_tflm, `--reference tflm`).
 *
 * One name per operator: toolchain/compiler/ops/<op>.py emits calls to tm_<op>_s8() (optionally
 * tm_<op>_s8_<variant>()), which lives in firmware/kernels/{ref,dsp,mve}/tm_<op>_s8.c.
 *
 * Conventions
 * - Every kernel has the shape
 *       tm_status tm_<op>_s8(const tm_context *ctx, const tm_<op>_params *params, [const quant,]
 *                            input dims/data..., output dims/data);
 *   and a companion int32_t tm_<op>_s8_get_buffer_size(...) giving the scratch bytes the caller must
 *   pass in ctx (the compiler's `scratch_bytes` mirrors it and places the buffer in the arena).
 *   The portable (ref) kernels need no scratch: their companions return 0.
 * - Tensors are dense, row-major, NHWC (tm_dims {n, h, w, c}); unused leading dims are 1.
 *   Element-wise kernels take the tensor as {1, 1, 1, size}.
 * - Quantization: real = scale * (q - zero_point). Kernels get offsets, not zero points:
 *   input_offset = -input_zero_point (range [-127, 128]), output_offset = +output_zero_point
 *   (range [-128, 127]). Weights are symmetric (zero point 0) unless a filter_offset is given.
 * - A real multiplier M > 0 is stored as (multiplier, shift) with M = multiplier * 2^(shift - 31),
 *   multiplier in [2^30, 2^31) (or 0), shift in [-31, 30] (TFLite QuantizeMultiplier), and applied
 *   with TFLite's double rounding:
 *   RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x * 2^max(shift,0), multiplier), max(-shift,0)).
 * - Activation clamps (fused ReLU/ReLU6) are given in the output's quantized domain.
 * - Every kernel returns TM_OK, or TM_ARG_ERROR on invalid arguments (nothing written).
 */
#ifndef TM_NN_H
#define TM_NN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TM_OK = 0,
    TM_ARG_ERROR = -1,
} tm_status;

typedef struct {
    int32_t n, h, w, c;
} tm_dims;

typedef struct {
    int32_t h, w;
} tm_tile;

typedef struct {
    int32_t min, max; /* inclusive clamp in the output's quantized domain, -128 <= min <= max <= 127 */
} tm_activation;

typedef struct {
    void *buf;    /* scratch memory of at least tm_<op>_s8_get_buffer_size() bytes (NULL when that is 0) */
    int32_t size; /* bytes */
} tm_context;

/* Requantization of a conv / depthwise output.
 * per_channel != 0: one (multiplier, shift) per output channel; else index 0 serves all channels. */
typedef struct {
    const int32_t *multiplier;
    const int32_t *shift;
    int32_t per_channel;
} tm_quant;

/* ---- CONV_2D ------------------------------------------------------------------------------------
 * input [n, h_in, w_in, c_in], filter [c_out, kh, kw, c_in], bias [c_out] int32 (may be NULL),
 * output [n, h_out, w_out, c_out].
 * Output position (y, x) reads input rows y*stride.h - padding.h + ky*dilation.h (same for columns);
 * positions outside the input contribute nothing (they are the input zero point).
 * acc = bias + sum(filter * (input + input_offset)); out = clamp(requantize(acc) + output_offset). */
typedef struct {
    int32_t input_offset;
    int32_t output_offset;
    tm_tile stride;
    tm_tile padding;  /* top, left; bottom/right padding follows from the output dims */
    tm_tile dilation;
    tm_activation activation;
} tm_conv2d_params;

tm_status tm_conv2d_s8(const tm_context *ctx, const tm_conv2d_params *params, const tm_quant *quant,
                       const tm_dims *input_dims, const int8_t *input,
                       const tm_dims *filter_dims, const int8_t *filter,
                       const int32_t *bias,
                       const tm_dims *output_dims, int8_t *output);
int32_t tm_conv2d_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                     const tm_dims *output_dims);

/* ---- DEPTHWISE_CONV_2D --------------------------------------------------------------------------
 * input [n, h_in, w_in, c_in], filter [1, kh, kw, c_in * ch_mult], bias [c_in * ch_mult] (may be NULL),
 * output [n, h_out, w_out, c_in * ch_mult]; output channel oc = ic * ch_mult + m reads input channel ic. */
typedef struct {
    int32_t input_offset;
    int32_t output_offset;
    int32_t ch_mult;
    tm_tile stride;
    tm_tile padding;
    tm_tile dilation;
    tm_activation activation;
} tm_depthwise_conv2d_params;

tm_status tm_depthwise_conv2d_s8(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                 const tm_quant *quant,
                                 const tm_dims *input_dims, const int8_t *input,
                                 const tm_dims *filter_dims, const int8_t *filter,
                                 const int32_t *bias,
                                 const tm_dims *output_dims, int8_t *output);
int32_t tm_depthwise_conv2d_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                               const tm_dims *output_dims);

/* ---- TRANSPOSE_CONV ------------------------------------------------------------------------------
 * input [n, h_in, w_in, c_in], filter [c_out, kh, kw, c_in], bias [c_out] int32 (may be NULL),
 * output [n, h_out, w_out, c_out] (its size is the model's output_shape, not derived here).
 * Input (iy, ix) scatters through filter tap (ky, kx) onto output row iy*stride.h - padding.h + ky (same for
 * columns); contributions outside the output are dropped. padding (top, left) lies in [0, kh) x [0, kw).
 * acc = bias + sum(filter * (input + input_offset)); out = clamp(requantize(acc) + output_offset). */
typedef struct {
    int32_t input_offset;
    int32_t output_offset;
    tm_tile stride;
    tm_tile padding;
    tm_activation activation;
} tm_transpose_conv_params;

tm_status tm_transpose_conv_s8(const tm_context *ctx, const tm_transpose_conv_params *params,
                               const tm_quant *quant,
                               const tm_dims *input_dims, const int8_t *input,
                               const tm_dims *filter_dims, const int8_t *filter,
                               const int32_t *bias,
                               const tm_dims *output_dims, int8_t *output);
int32_t tm_transpose_conv_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                             const tm_dims *output_dims);

/* ---- FULLY_CONNECTED ----------------------------------------------------------------------------
 * input {batches, 1, 1, accum_depth}, filter {out_depth, 1, 1, accum_depth}, bias [out_depth] (may be
 * NULL), output {batches, 1, 1, out_depth}.
 * acc = bias + sum((filter + filter_offset) * (input + input_offset)).
 * LiteRT's reference FULLY_CONNECTED rescales with a single rounding in IEEE double:
 * out = clamp((int32)round((double)acc * scale[oc]) + output_offset), round() = half away from zero,
 * scale[oc] = (double)input_scale * (double)filter_scale[oc] / (double)output_scale. The kernel
 * reproduces that double multiply exactly in integer arithmetic.
 * tflite-micro (and CMSIS-NN) requantize FULLY_CONNECTED like conv instead: tm_fully_connected_s8_tflm
 * takes a tm_quant (multiplier, shift) of the same scale and applies TFLite's double rounding;
 * out = clamp(requantize(acc) + output_offset). */
typedef struct {
    int32_t input_offset;
    int32_t filter_offset;
    int32_t output_offset;
    tm_activation activation;
} tm_fully_connected_params;

/* The double scale[c] = m * 2^exponent[c] exactly, with the 53-bit integer mantissa
 * m = mantissa_hi[c] * 2^32 + mantissa_lo[c] in [2^52, 2^53) (mantissa_hi in [2^20, 2^21)) and
 * exponent in [-1074, 971] (a positive normal double). per_channel == 0: entry 0 serves every output
 * channel. */
typedef struct {
    const uint32_t *mantissa_hi;
    const uint32_t *mantissa_lo;
    const int32_t *exponent;
    int32_t per_channel;
} tm_fully_connected_quant;

tm_status tm_fully_connected_s8(const tm_context *ctx, const tm_fully_connected_params *params,
                                const tm_fully_connected_quant *quant,
                                const tm_dims *input_dims, const int8_t *input,
                                const tm_dims *filter_dims, const int8_t *filter,
                                const int32_t *bias,
                                const tm_dims *output_dims, int8_t *output);
tm_status tm_fully_connected_s8_tflm(const tm_context *ctx, const tm_fully_connected_params *params,
                                     const tm_quant *quant,
                                     const tm_dims *input_dims, const int8_t *input,
                                     const tm_dims *filter_dims, const int8_t *filter,
                                     const int32_t *bias,
                                     const tm_dims *output_dims, int8_t *output);
int32_t tm_fully_connected_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                              const tm_dims *output_dims);
int32_t tm_fully_connected_s8_tflm_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                                   const tm_dims *output_dims);
/* LiteRT's single rounding of one accumulator: round((double)acc * m * 2^exponent) saturated to int32,
 * m = mantissa_hi * 2^32 + mantissa_lo (the tm_fully_connected_quant entry of a channel). Shared with the
 * dsp / mve FULLY_CONNECTED kernels (their fast requantization falls back on it in the rare cases it
 * cannot decide). */
int32_t tm_fully_connected_requantize_litert(int32_t acc, uint32_t mantissa_hi, uint32_t mantissa_lo,
                                             int32_t exponent);

/* ---- AVERAGE_POOL_2D / MAX_POOL_2D --------------------------------------------------------------
 * input [n, h_in, w_in, c], output [n, h_out, w_out, c]; input and output share scale and zero point.
 * Padded positions are excluded from the window.
 * Average: sum of in-bounds inputs divided by their count, rounded half away from zero; a window
 * entirely in the padding is refused. Max: an empty window gives -128. */
typedef struct {
    tm_tile stride;
    tm_tile padding;
    tm_tile filter;
    tm_activation activation;
} tm_pool2d_params;

typedef tm_pool2d_params tm_avg_pool2d_params;
typedef tm_pool2d_params tm_max_pool2d_params;

tm_status tm_avg_pool2d_s8(const tm_context *ctx, const tm_avg_pool2d_params *params,
                           const tm_dims *input_dims, const int8_t *input,
                           const tm_dims *output_dims, int8_t *output);
int32_t tm_avg_pool2d_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

tm_status tm_max_pool2d_s8(const tm_context *ctx, const tm_max_pool2d_params *params,
                           const tm_dims *input_dims, const int8_t *input,
                           const tm_dims *output_dims, int8_t *output);
int32_t tm_max_pool2d_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* ---- MEAN over any axes ---------------------------------------------------------------------------
 * input [n, h, w, c] -> output with each dimension the input's (kept) or 1 (reduced): the reduction keeps the
 * input's order, so keep_dims false is the same bytes. count = number of input elements per output element.
 * out = clamp(requantize(sum(input) + input_offset * count) + output_offset, -128, 127), the sum wrapping in
 * int32 as LiteRT's reference QuantizedMeanOrSum, where (multiplier, shift) already folds 1/count into
 * s_in / s_out as LiteRT does. The dsp / mve variants cover the spatial mean only (output [n, 1, 1, c]). */
typedef struct {
    int32_t input_offset;
    int32_t output_offset;
    int32_t multiplier;
    int32_t shift;
} tm_mean_params;

tm_status tm_mean_s8(const tm_context *ctx, const tm_mean_params *params,
                     const tm_dims *input_dims, const int8_t *input,
                     const tm_dims *output_dims, int8_t *output);
int32_t tm_mean_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* ---- REDUCE_MAX / REDUCE_MIN over any axes --------------------------------------------------------
 * Dims as MEAN's (each output dimension the input's or 1). Input and output share scale and zero point (LiteRT
 * requires it), so the kernel picks a raw int8 value: the largest (TM_REDUCE_MAX) or smallest (TM_REDUCE_MIN). */
typedef enum {
    TM_REDUCE_MAX = 0,
    TM_REDUCE_MIN = 1,
} tm_reduce_kind;

typedef struct {
    int32_t kind; /* tm_reduce_kind */
} tm_reduce_params;

tm_status tm_reduce_s8(const tm_context *ctx, const tm_reduce_params *params,
                       const tm_dims *input_dims, const int8_t *input,
                       const tm_dims *output_dims, int8_t *output);
int32_t tm_reduce_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* ---- RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR ------------------------------------------------------
 * input [n, h_in, w_in, c] -> output [n, h_out, w_out, c]; input and output share scale and zero point.
 * The compiler computes, per output row and per output column, which input rows / columns it reads, with
 * LiteRT's own arithmetic (GetNearestNeighbor in float; ComputeInterpolationValuesInteger in 1/1024 steps):
 * - nearest (bilinear == 0): output[b][y][x] = input[b][rows.lower[y]][cols.lower[x]] (upper, weight unused);
 * - bilinear: with wy = rows.weight[y], wx = cols.weight[x] (the upper index's weight in 1/1024; negative where
 *   the sampling point lies before the first pixel, lower == upper there), the four neighbours weighted
 *   (1024 - wy)(1024 - wx), wy(1024 - wx), (1024 - wy)wx, wy wx, the sum divided by 2^20 rounding half away
 *   from zero (ResizeBilinearInteger). Every index lies in [0, extent). */
typedef struct {
    const int16_t *lower;  /* per output index: the input index (nearest), the one below (bilinear) */
    const int16_t *upper;  /* bilinear: the input index above; nearest: NULL */
    const int16_t *weight; /* bilinear: upper's weight in [-1024, 1024]; nearest: NULL */
} tm_resize_axis;

typedef struct {
    tm_resize_axis rows; /* h_out entries each */
    tm_resize_axis cols; /* w_out entries each */
    int32_t bilinear;
} tm_resize_params;

tm_status tm_resize_s8(const tm_context *ctx, const tm_resize_params *params,
                       const tm_dims *input_dims, const int8_t *input,
                       const tm_dims *output_dims, int8_t *output);
int32_t tm_resize_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* ---- Element-wise binary ops: ADD, SUB, MUL, MAXIMUM, MINIMUM, SQUARED_DIFFERENCE --------------
 * NumPy broadcasting: output_dims is the output as 4-D (the compiler merges neighbouring dimensions that
 * broadcast alike, so the innermost run is as long as possible); input{1,2}_dims are each input's 4-D shape in
 * the same frame, every dimension equal to the output's or 1. tm_broadcast holds, per input, its element
 * stride along n, h, w, c of the output index (0 along a dimension it broadcasts):
 *     output[n][h][w][c] = f(input1[n*s1.n + h*s1.h + w*s1.w + c*s1.c], input2[... s2 ...]).
 * Same-shape operands: dims {1, 1, 1, size}, strides {0, 0, 0, 1}. Each kernel reads element i of an input of
 * the output's shape before it writes output element i, in increasing order (the output may overlap it). */
typedef struct {
    tm_dims input1_stride; /* elements, >= 0 */
    tm_dims input2_stride;
} tm_broadcast;

/* ADD / SUB / SQUARED_DIFFERENCE (TFLite's int8 arithmetic): each input is offset, shifted left by left_shift
 * (ADD, SUB: 20; SQUARED_DIFFERENCE: 7) and rescaled by its (multiplier, shift), shift <= 0, both to twice the
 * larger input scale; the sum / difference / squared difference is rescaled by the output (multiplier,
 * shift), shift <= 0, and offset: out = clamp(rescale(f(rescale1(x1), rescale2(x2))) + output_offset).
 * Every rescale here is LiteRT's MultiplyByQuantizedMultiplierSmallerThanOneExp (double rounding). */
typedef struct {
    int32_t input1_offset, input2_offset, output_offset;
    int32_t left_shift;
    int32_t input1_multiplier, input1_shift;
    int32_t input2_multiplier, input2_shift;
    int32_t output_multiplier, output_shift;
    tm_activation activation;
} tm_arithmetic_params;

typedef tm_arithmetic_params tm_add_params;
typedef tm_arithmetic_params tm_sub_params;
typedef tm_arithmetic_params tm_squared_difference_params;

/* tm_add_s8: both inputs of the output's size ({1, 1, 1, size}); tm_add_s8_broadcast: any broadcast. */
tm_status tm_add_s8(const tm_context *ctx, const tm_add_params *params,
                    const tm_dims *input1_dims, const int8_t *input1,
                    const tm_dims *input2_dims, const int8_t *input2,
                    const tm_dims *output_dims, int8_t *output);
int32_t tm_add_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);
tm_status tm_add_s8_broadcast(const tm_context *ctx, const tm_add_params *params, const tm_broadcast *broadcast,
                              const tm_dims *input1_dims, const int8_t *input1,
                              const tm_dims *input2_dims, const int8_t *input2,
                              const tm_dims *output_dims, int8_t *output);
int32_t tm_add_s8_broadcast_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

tm_status tm_sub_s8(const tm_context *ctx, const tm_sub_params *params, const tm_broadcast *broadcast,
                    const tm_dims *input1_dims, const int8_t *input1,
                    const tm_dims *input2_dims, const int8_t *input2,
                    const tm_dims *output_dims, int8_t *output);
int32_t tm_sub_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* SQUARED_DIFFERENCE has no fused activation: activation is {-128, 127}. */
tm_status tm_squared_difference_s8(const tm_context *ctx, const tm_squared_difference_params *params,
                                   const tm_broadcast *broadcast,
                                   const tm_dims *input1_dims, const int8_t *input1,
                                   const tm_dims *input2_dims, const int8_t *input2,
                                   const tm_dims *output_dims, int8_t *output);
int32_t tm_squared_difference_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* MUL: out = clamp(requantize((x1 + input1_offset) * (x2 + input2_offset)) + output_offset), one
 * (multiplier, shift), shift in [-31, 30], of input1_scale * input2_scale / output_scale. */
typedef struct {
    int32_t input1_offset, input2_offset, output_offset;
    int32_t multiplier, shift;
    tm_activation activation;
} tm_mul_params;

tm_status tm_mul_s8(const tm_context *ctx, const tm_mul_params *params, const tm_broadcast *broadcast,
                    const tm_dims *input1_dims, const int8_t *input1,
                    const tm_dims *input2_dims, const int8_t *input2,
                    const tm_dims *output_dims, int8_t *output);
int32_t tm_mul_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* MAXIMUM / MINIMUM compare the raw int8 values (inputs and output share scale and zero point), then clamp
 * (activation is {-128, 127} unless the compiler folded a clamp in). */
typedef struct {
    tm_activation activation;
} tm_minmax_params;

typedef tm_minmax_params tm_maximum_params;
typedef tm_minmax_params tm_minimum_params;

tm_status tm_maximum_s8(const tm_context *ctx, const tm_maximum_params *params, const tm_broadcast *broadcast,
                        const tm_dims *input1_dims, const int8_t *input1,
                        const tm_dims *input2_dims, const int8_t *input2,
                        const tm_dims *output_dims, int8_t *output);
int32_t tm_maximum_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

tm_status tm_minimum_s8(const tm_context *ctx, const tm_minimum_params *params, const tm_broadcast *broadcast,
                        const tm_dims *input1_dims, const int8_t *input1,
                        const tm_dims *input2_dims, const int8_t *input2,
                        const tm_dims *output_dims, int8_t *output);
int32_t tm_minimum_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* ---- SOFTMAX (int8 in, int8 out with scale 1/256 and zero point -128) ---------------------------
 * TFLite's fixed-point reference softmax over the innermost dimension c (gemmlowp exp / reciprocal).
 * input_multiplier/input_left_shift from PreprocessSoftmaxScaling(beta, input_scale, 5 integer bits),
 * diff_min = -CalculateInputRadius(5, input_left_shift). */
typedef struct {
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t diff_min;
} tm_softmax_params;

tm_status tm_softmax_s8(const tm_context *ctx, const tm_softmax_params *params,
                        const tm_dims *input_dims, const int8_t *input,
                        const tm_dims *output_dims, int8_t *output);
int32_t tm_softmax_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* ---- PAD / PADV2 (constant) ---------------------------------------------------------------------
 * input [n, h, w, c] -> output [n + before.n + after.n, ...], padded positions get pad_value. */
typedef struct {
    tm_dims pad_before;
    int32_t pad_value; /* int8 */
} tm_pad_params;

tm_status tm_pad_s8(const tm_context *ctx, const tm_pad_params *params,
                    const tm_dims *input_dims, const int8_t *input,
                    const tm_dims *output_dims, int8_t *output);
int32_t tm_pad_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* ---- CONCATENATION (inputs share the output's scale and zero point) -----------------------------
 * Joins num_inputs tensors along one axis. Viewed as [outer, axis_i * inner]: input i contributes
 * copy_size[i] = dim_i(axis) * inner contiguous bytes to every one of the `outer` output rows. */
typedef struct {
    const int32_t *copy_size;
    int32_t num_inputs;
    int32_t outer;
} tm_concatenation_params;

tm_status tm_concatenation_s8(const tm_context *ctx, const tm_concatenation_params *params,
                              const int8_t *const *inputs,
                              const tm_dims *output_dims, int8_t *output);
int32_t tm_concatenation_s8_get_buffer_size(const tm_dims *output_dims);

/* ---- SPLIT / SPLIT_V / UNPACK (outputs share the input's scale and zero point) -----------------
 * The inverse of CONCATENATION: viewed as [outer, sum of copy_size], every one of the `outer` input
 * rows gives copy_size[i] = dim_i(axis) * inner contiguous bytes to output i, in order. */
typedef struct {
    const int32_t *copy_size;
    int32_t num_outputs;
    int32_t outer;
} tm_split_params;

tm_status tm_split_s8(const tm_context *ctx, const tm_split_params *params,
                      const tm_dims *input_dims, const int8_t *input,
                      int8_t *const *outputs);
int32_t tm_split_s8_get_buffer_size(const tm_dims *input_dims);

/* ---- GATHER along one axis with constant indices (output shares the input's quantization) -------
 * The input viewed as [outer, axis_size, inner]: output[o][k][:] = input[o][indices[k]][:] for
 * k < num_indices; every index lies in [0, axis_size) (the compiler checks it, the kernel again). */
typedef struct {
    const int32_t *indices;
    int32_t num_indices;
    int32_t outer;
    int32_t axis_size;
    int32_t inner;
} tm_gather_params;

tm_status tm_gather_s8(const tm_context *ctx, const tm_gather_params *params,
                       const tm_dims *input_dims, const int8_t *input,
                       const tm_dims *output_dims, int8_t *output);
int32_t tm_gather_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* ---- STRIDED_SLICE (input and output share scale and zero point) ------------------------------
 * output[n][h][w][c] = input[begin.n + n*stride.n][begin.h + h*stride.h][...][begin.c + c*stride.c]
 * for every index of output_dims; begin/stride are already resolved (masks, negative indices). */
typedef struct {
    tm_dims begin;
    tm_dims stride;
} tm_strided_slice_params;

tm_status tm_strided_slice_s8(const tm_context *ctx, const tm_strided_slice_params *params,
                              const tm_dims *input_dims, const int8_t *input,
                              const tm_dims *output_dims, int8_t *output);
int32_t tm_strided_slice_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* ---- TRANSPOSE (int8): output[i0][i1][i2][i3] = input at the index whose axis perm[k] is i_k.
 * perm: a permutation of 0..3 given as {n, h, w, c} = the input axis each output axis reads; output_dims the
 * input's dims in that order. Pure data movement: input and output share their quantization. */
typedef struct {
    tm_dims perm;
} tm_transpose_params;

tm_status tm_transpose_s8(const tm_context *ctx, const tm_transpose_params *params,
                          const tm_dims *input_dims, const int8_t *input,
                          const tm_dims *output_dims, int8_t *output);
int32_t tm_transpose_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* ---- Element-wise requantization: QUANTIZE int8 -> int8 and standalone RELU / RELU6 / RELU_N1_TO_1
 * out = clamp(requantize(input + input_offset) + output_offset); the ReLUs differ only in the clamp. */
typedef struct {
    int32_t input_offset;
    int32_t output_offset;
    int32_t multiplier;
    int32_t shift;
    tm_activation activation;
} tm_requantize_params;

typedef tm_requantize_params tm_quantize_params;
typedef tm_requantize_params tm_relu_params;

tm_status tm_quantize_s8(const tm_context *ctx, const tm_quantize_params *params,
                         const tm_dims *input_dims, const int8_t *input,
                         const tm_dims *output_dims, int8_t *output);
int32_t tm_quantize_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

tm_status tm_relu_s8(const tm_context *ctx, const tm_relu_params *params,
                     const tm_dims *input_dims, const int8_t *input,
                     const tm_dims *output_dims, int8_t *output);
int32_t tm_relu_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* ---- LOGISTIC, TANH, ELU, HARD_SWISH, LEAKY_RELU: an int8 lookup table ---------------------------
 * output[i] = table[(uint8_t)input[i]]: the compiler computes the 256 outputs of the op with LiteRT's
 * arithmetic (entry k holds the output for input (int8_t)k). May run in place (output == input). */
typedef struct {
    const int8_t *table; /* 256 entries */
} tm_lut_params;

tm_status tm_lut_s8(const tm_context *ctx, const tm_lut_params *params,
                    const tm_dims *input_dims, const int8_t *input,
                    const tm_dims *output_dims, int8_t *output);
int32_t tm_lut_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* ---- PRELU ---------------------------------------------------------------------------------------
 * input and output {1, 1, 1, size}, alpha {1, 1, 1, alpha_size} (constant int8, size a multiple of
 * alpha_size): element i uses alpha[i % alpha_size] (per-channel alpha of an NHWC tensor, or a full one).
 * x = input + input_offset; out = clamp(x >= 0 ? requantize(x, positive) : requantize(x * (alpha +
 * alpha_offset), negative) + output_offset, -128, 127), as LiteRT's reference Prelu (two multipliers:
 * positive = s_in / s_out, negative = s_in * s_alpha / s_out). May run in place (output == input). */
typedef struct {
    int32_t input_offset;  /* -input zero point */
    int32_t alpha_offset;  /* -alpha zero point */
    int32_t output_offset; /* +output zero point */
    int32_t positive_multiplier;
    int32_t positive_shift;
    int32_t negative_multiplier;
    int32_t negative_shift;
} tm_prelu_params;

tm_status tm_prelu_s8(const tm_context *ctx, const tm_prelu_params *params,
                      const tm_dims *input_dims, const int8_t *input,
                      const tm_dims *alpha_dims, const int8_t *alpha,
                      const tm_dims *output_dims, int8_t *output);
int32_t tm_prelu_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *alpha_dims,
                                    const tm_dims *output_dims);

/* ---- QUANTIZE float -> int8 / DEQUANTIZE int8 -> float (model edges) ----------------------------
 * quantize: q = clamp((int32)roundf(x / scale) + zero_point, -128, 127)   (float arithmetic)
 * dequantize: x = (float)(scale * (q - zero_point)) */
typedef struct {
    float scale;        /* > 0 */
    int32_t zero_point; /* [-128, 127] */
} tm_affine_params;

typedef tm_affine_params tm_quantize_f32_params;
typedef tm_affine_params tm_dequantize_params;

tm_status tm_quantize_s8_from_f32(const tm_context *ctx, const tm_quantize_f32_params *params,
                                  const tm_dims *input_dims, const float *input,
                                  const tm_dims *output_dims, int8_t *output);
int32_t tm_quantize_s8_from_f32_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

tm_status tm_dequantize_s8(const tm_context *ctx, const tm_dequantize_params *params,
                           const tm_dims *input_dims, const int8_t *input,
                           const tm_dims *output_dims, float *output);
int32_t tm_dequantize_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* ==== int16 activations, int8 weights (TFLite's "16x8" quantization) ==============================
 * tm_<op>_s16 in tm_<op>_s16.c: the same parameter structs as the int8 kernel where they fit, with int16
 * tensors (zero point 0: every offset is 0) and activation clamps in [-32768, 32767]. Bit-exact with
 * LiteRT's reference int16 kernels. */

/* FULLY_CONNECTED 16x8: acc = bias[oc] (int64, may be NULL) + sum(filter * input) in int64, then
 * round((double)acc * scale[c]) as LiteRT's reference does (half away from zero; a result outside int32
 * becomes INT32_MIN, as x86's conversion LiteRT runs on gives), + output_offset, clamped.
 * scale[c] = (double)s_in * s_w[c] / s_out; per_channel == 0: scale[0] serves every channel. */
typedef struct {
    const double *scale;
    int32_t per_channel;
} tm_fully_connected_s16_quant;

tm_status tm_fully_connected_s16(const tm_context *ctx, const tm_fully_connected_params *params,
                                 const tm_fully_connected_s16_quant *quant,
                                 const tm_dims *input_dims, const int16_t *input,
                                 const tm_dims *filter_dims, const int8_t *filter,
                                 const int64_t *bias,
                                 const tm_dims *output_dims, int16_t *output);
int32_t tm_fully_connected_s16_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                               const tm_dims *output_dims);

/* CONV_2D and DEPTHWISE_CONV_2D 16x8 (LiteRT's reference ConvPerChannel / DepthwiseConvPerChannel for int16):
 * the int8 kernels' parameters with input_offset = output_offset = 0; acc = bias[c] (int64, may be NULL) +
 * sum(filter * input) in int64, requantized by tm_quant with TFLite's MultiplyByQuantizedMultiplier for int64
 * (multiplier rounded to 15 bits, one rounding; shift in [-31, 7], |acc| < 2^47), then clamped. */
tm_status tm_conv2d_s16(const tm_context *ctx, const tm_conv2d_params *params, const tm_quant *quant,
                        const tm_dims *input_dims, const int16_t *input,
                        const tm_dims *filter_dims, const int8_t *filter,
                        const int64_t *bias,
                        const tm_dims *output_dims, int16_t *output);
int32_t tm_conv2d_s16_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                      const tm_dims *output_dims);
tm_status tm_depthwise_conv2d_s16(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                  const tm_quant *quant,
                                  const tm_dims *input_dims, const int16_t *input,
                                  const tm_dims *filter_dims, const int8_t *filter,
                                  const int64_t *bias,
                                  const tm_dims *output_dims, int16_t *output);
int32_t tm_depthwise_conv2d_s16_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                                const tm_dims *output_dims);

/* AVERAGE_POOL_2D / MAX_POOL_2D int16: the int8 pools' parameters and rounding (LiteRT's reference int16
 * pools); the window holds at most 65536 values; an empty max window gives -32768. */
tm_status tm_avg_pool2d_s16(const tm_context *ctx, const tm_avg_pool2d_params *params,
                            const tm_dims *input_dims, const int16_t *input,
                            const tm_dims *output_dims, int16_t *output);
int32_t tm_avg_pool2d_s16_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);
tm_status tm_max_pool2d_s16(const tm_context *ctx, const tm_max_pool2d_params *params,
                            const tm_dims *input_dims, const int16_t *input,
                            const tm_dims *output_dims, int16_t *output);
int32_t tm_max_pool2d_s16_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* ADD int16 of same-shape inputs ({1, 1, 1, size}): the int8 kernel's arithmetic (LiteRT's general-scale
 * int16 path) with left_shift 15, zero offsets and int16 clamps. */
tm_status tm_add_s16(const tm_context *ctx, const tm_add_params *params,
                     const tm_dims *input1_dims, const int16_t *input1,
                     const tm_dims *input2_dims, const int16_t *input2,
                     const tm_dims *output_dims, int16_t *output);
int32_t tm_add_s16_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* MUL int16 of same-shape inputs ({1, 1, 1, size}): the int8 kernel's arithmetic (LiteRT's reference int16 Mul:
 * the int32 product of two int16 values, requantized) with zero offsets and int16 clamps. */
tm_status tm_mul_s16(const tm_context *ctx, const tm_mul_params *params,
                     const tm_dims *input1_dims, const int16_t *input1,
                     const tm_dims *input2_dims, const int16_t *input2,
                     const tm_dims *output_dims, int16_t *output);
int32_t tm_mul_s16_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* QUANTIZE float32 -> int16 and DEQUANTIZE int16 -> float32, an int16 model's float input and output (zero point
 * 0): q = clamp(round(x / scale)) (a quotient outside int32, or NaN, gives -32768 as LiteRT on x86 does), and
 * x = scale * q. */
tm_status tm_quantize_s16(const tm_context *ctx, const tm_quantize_f32_params *params,
                          const tm_dims *input_dims, const float *input,
                          const tm_dims *output_dims, int16_t *output);
int32_t tm_quantize_s16_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);
tm_status tm_dequantize_s16(const tm_context *ctx, const tm_dequantize_params *params,
                            const tm_dims *input_dims, const int16_t *input,
                            const tm_dims *output_dims, float *output);
int32_t tm_dequantize_s16_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* MEAN int16: tm_mean_s8's arithmetic (LiteRT's QuantizedMeanOrSum, an int32 sum) on int16 tensors, clamped to
 * int16. */
tm_status tm_mean_s16(const tm_context *ctx, const tm_mean_params *params,
                      const tm_dims *input_dims, const int16_t *input,
                      const tm_dims *output_dims, int16_t *output);
int32_t tm_mean_s16_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* LOGISTIC (tanh == 0) and TANH (tanh == 1) int16, LiteRT's reference_integer_ops::Logistic / Tanh for int16:
 * x' = (x * input_multiplier + round) >> input_left_shift (input_multiplier 0: 3 << input_left_shift, no shift),
 * then sigmoid_table (256 entries of sigmoid(i / 24) in 0.16 fixed point) interpolated at |x'| (tanh(x) =
 * 2 sigmoid(2x) - 1), mirrored for x' < 0. Output scale 2^-15. May run in place. */
typedef struct {
    const uint16_t *sigmoid_table;
    int32_t input_multiplier; /* [0, 65535] */
    int32_t input_left_shift; /* [0, 31] */
    int32_t tanh;
} tm_lut_s16_params;

tm_status tm_lut_s16(const tm_context *ctx, const tm_lut_s16_params *params,
                     const tm_dims *input_dims, const int16_t *input,
                     const tm_dims *output_dims, int16_t *output);
int32_t tm_lut_s16_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* SOFTMAX int16 -> int16 over the innermost dimension (LiteRT's SoftmaxInt16): output in [0, 32767] for
 * [0, 1] whatever the output scale. x - max is rescaled by (input_multiplier, input_left_shift) =
 * QuantizeMultiplier(s_in * beta / (10 / 65535)) so that [-65535, 0] spans [-10, 0], looked up in exp_lut
 * (513 entries: exp over [-10, 0]), the sum's reciprocal in one_over_one_plus_x_lut (1 / (1 + x) over
 * [0, 1]); both tables come from TFLite's LUTPopulate, read with its interpolating LUTLookup. */
typedef struct {
    int32_t input_multiplier;
    int32_t input_left_shift;
    const int16_t *exp_lut;
    const int16_t *one_over_one_plus_x_lut;
} tm_softmax_s16_params;

tm_status tm_softmax_s16(const tm_context *ctx, const tm_softmax_s16_params *params,
                         const tm_dims *input_dims, const int16_t *input,
                         const tm_dims *output_dims, int16_t *output);
int32_t tm_softmax_s16_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims);

/* ---- Early exit --------------------------------------------------------------------------------
 * The largest value of an int8 tensor (an exit's softmax: its top probability is (max + 128) / 256).
 * Not an operator: the generated exit check calls it. */
int32_t tm_max_s8(const int8_t *input, int32_t size);

#ifdef __cplusplus
}
#endif

#endif /* TM_NN_H */
