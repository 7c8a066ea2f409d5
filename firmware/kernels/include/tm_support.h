/*
 * tm_support.h - private to the kernels (not part of the tm_nn.h API): the argument checks and
 * fixed-point helpers every kernel shares, written once. Everything here is static inline so each
 * kernel compiles it in place; tm_support.c holds only the shared element-wise requantization.
 */
#ifndef TM_SUPPORT_H
#define TM_SUPPORT_H

#include <stddef.h>

#include "tm_nn.h"

/* For helpers whose callers pass constant flags: inlined into each caller, every call becomes a loop
 * specialised for its constants. */
#if defined(__GNUC__)
#define TM_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define TM_ALWAYS_INLINE inline
#endif

/* ---- Fixed-point arithmetic with gemmlowp / TFLite semantics ---------------------------------
 * Inline because they run once per output element, where a call, a return and the register spills
 * around it cost more than the arithmetic. tests/test_fixed_point.py checks them against a plain
 * transcription of TFLite's MultiplyByQuantizedMultiplier. */

/* gemmlowp's SaturatingRoundingDoublingHighMul. gemmlowp adds 2^30 (ab >= 0) or 1 - 2^30 (ab < 0)
 * and divides by 2^31 truncating toward zero; for ab < 0 that truncation equals flooring after
 * adding 2^31 - 1, so both cases are floor((ab + 2^30) / 2^31). That is 2 * high word plus the
 * carry of the low word, floor((low / 2 + 2^29) / 2^30) in 32 bits: one SMULL and four ALU
 * instructions on Armv7-M, with no constant held in a register. */
static inline int32_t tm_saturating_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    const int64_t ab = (int64_t)a * b;
    const uint32_t low = (uint32_t)ab;
    const uint32_t high_word = (uint32_t)(ab >> 32);
    const int32_t high = (int32_t)((high_word << 1) + (((low >> 1) + (1u << 29)) >> 30));
    /* Every other product gives at least INT32_MIN + 1; INT32_MIN * INT32_MIN gives 2^31, which
     * wraps to INT32_MIN and saturates to INT32_MAX. */
    return high == INT32_MIN ? INT32_MAX : high;
}

/* Rounds half away from zero. exponent must lie in [0, 31]. */
static inline int32_t tm_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((1u << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (int32_t)((uint32_t)x >> 31);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * multiplier * 2^(shift - 31) with TFLite's double rounding; shift in [-31, 30]. */
static inline int32_t tm_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    /* TFLite computes x * 2^left in int32 and lets it wrap; uint32 reproduces that without UB. */
    const int32_t shifted = (int32_t)((uint32_t)x << left);
    return tm_rounding_divide_by_pot(tm_saturating_rounding_doubling_high_mul(shifted, multiplier), right);
}

/* TFLite's MultiplyByQuantizedMultiplier for an int64 x (the 16x8 kernels' accumulators): the multiplier
 * rounded to 15 bits, then one rounding shift; |x| < 2^47 and shift in [-31, 7], as TFLite assumes. The
 * result is narrowed to int32 modulo 2^32, as TFLite's conversion does. */
static inline int32_t tm_requantize_s64(int64_t x, int32_t multiplier, int32_t shift)
{
    const int64_t reduced = multiplier < 0x7FFF0000 ? (multiplier + (1 << 15)) >> 16 : 0x7FFF;
    const int32_t total_shift = 15 - shift;
    const int64_t result = (x * reduced + (INT64_C(1) << (total_shift - 1))) >> total_shift;
    return (int32_t)(uint32_t)(uint64_t)result;
}

/* The element-wise requantization behind QUANTIZE int8 -> int8 and the standalone ReLUs. */
tm_status tm_requantize_elementwise_s8(const tm_requantize_params *params,
                                       const tm_dims *input_dims, const int8_t *input,
                                       const tm_dims *output_dims, int8_t *output);

/* ---- Argument checks ------------------------------------------------------------------------- */
static inline int tm_dims_ok(const tm_dims *d)
{
    return d != NULL && d->n > 0 && d->h > 0 && d->w > 0 && d->c > 0;
}

static inline int tm_same_dims(const tm_dims *a, const tm_dims *b)
{
    return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c;
}

/* Element count of valid dims; the compiler never emits a tensor above 2^31 bytes. */
static inline int32_t tm_dims_size(const tm_dims *d)
{
    return d->n * d->h * d->w * d->c;
}

static inline int tm_activation_ok(const tm_activation *a)
{
    return a->min >= -128 && a->min <= a->max && a->max <= 127;
}

static inline int tm_activation_s16_ok(const tm_activation *a)
{
    return a->min >= -32768 && a->min <= a->max && a->max <= 32767;
}

/* TFLite's LUTLookup of an int16 table of 513 entries: the top 9 bits pick an entry, the low 7 interpolate
 * linearly towards the next one, rounding half up. */
static inline int16_t tm_lut_lookup_s16(int16_t value, const int16_t *lut)
{
    const int32_t index = 256 + (value >> 7);
    const int32_t offset = value & 0x7f;
    const int32_t base = lut[index];
    const int32_t slope = lut[index + 1] - base;
    return (int16_t)(base + ((slope * offset + 64) >> 7));
}

/* Shifts outside [-31, 30] would make tm_requantize shift by more than the word size. */
static inline int tm_shift_ok(int32_t shift)
{
    return shift >= -31 && shift <= 30;
}

static inline int tm_quant_ok(const tm_quant *q, int32_t channels)
{
    if (q == NULL || q->multiplier == NULL || q->shift == NULL) {
        return 0;
    }
    const int32_t count = q->per_channel ? channels : 1;
    for (int32_t i = 0; i < count; ++i) {
        if (!tm_shift_ok(q->shift[i])) {
            return 0;
        }
    }
    return 1;
}

/* Shifts in [-31, 7]: those TFLite's int64 requantization takes. */
static inline int tm_quant_s64_ok(const tm_quant *q, int32_t channels)
{
    if (!tm_quant_ok(q, channels)) {
        return 0;
    }
    for (int32_t i = 0; i < (q->per_channel ? channels : 1); ++i) {
        if (q->shift[i] > 7 || q->multiplier[i] < 0) {
            return 0;
        }
    }
    return 1;
}

static inline int32_t tm_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* LiteRT adds in int32, which wraps; uint32 reproduces that without undefined behaviour. */
static inline int32_t tm_wrapping_add(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

/* One input and one output of the same shape (element-wise kernels). */
static inline int tm_same_shape_args_ok(const void *params, const tm_dims *input_dims, const void *input,
                                        const tm_dims *output_dims, const void *output)
{
    return params != NULL && input != NULL && output != NULL && tm_dims_ok(input_dims) && tm_dims_ok(output_dims) &&
           tm_same_dims(input_dims, output_dims);
}

static inline int tm_affine_ok(const tm_affine_params *p)
{
    return p->scale > 0.0f && p->zero_point >= -128 && p->zero_point <= 127;
}

/* The window checks shared by the conv / depthwise / pool kernels. */
static inline int tm_window_ok(const tm_tile *stride, const tm_tile *dilation)
{
    return stride->h > 0 && stride->w > 0 && dilation->h > 0 && dilation->w > 0;
}

/* TRANSPOSE_CONV: the tensors' dims agree, and the padding lies in [0, filter size) (LiteRT's always does; it keeps
 * the first contributing tap (o + padding) % stride non-negative). */
static inline int tm_transpose_conv_args_ok(const tm_transpose_conv_params *params, const tm_quant *quant,
                                            const tm_dims *input_dims, const int8_t *input,
                                            const tm_dims *filter_dims, const int8_t *filter,
                                            const tm_dims *output_dims, const int8_t *output)
{
    return params != NULL && input != NULL && filter != NULL && output != NULL && tm_dims_ok(input_dims) &&
           tm_dims_ok(filter_dims) && tm_dims_ok(output_dims) && filter_dims->c == input_dims->c &&
           output_dims->c == filter_dims->n && output_dims->n == input_dims->n &&
           params->stride.h > 0 && params->stride.w > 0 && params->padding.h >= 0 && params->padding.w >= 0 &&
           params->padding.h < filter_dims->h && params->padding.w < filter_dims->w &&
           tm_activation_ok(&params->activation) && tm_quant_ok(quant, output_dims->c);
}

/* The first filter tap along one axis that reaches output position o (the others that do follow at multiples of
 * the stride; each reads input position (o + padding - tap) / stride). */
static inline int32_t tm_transpose_conv_first_tap(int32_t o, int32_t padding, int32_t stride)
{
    return (o + padding) % stride;
}

/* ---- Pooling windows ------------------------------------------------------------------------- */
/* The pools' shapes, strides and window sizes, whatever the element type. */
static inline int tm_pool2d_geometry_ok(const tm_pool2d_params *params, const tm_dims *input_dims,
                                        const tm_dims *output_dims)
{
    return params != NULL && tm_dims_ok(input_dims) && tm_dims_ok(output_dims) &&
           output_dims->n == input_dims->n && output_dims->c == input_dims->c &&
           params->stride.h > 0 && params->stride.w > 0 && params->filter.h > 0 && params->filter.w > 0;
}

static inline int tm_pool2d_args_ok(const tm_pool2d_params *params, const tm_dims *input_dims, const int8_t *input,
                                    const tm_dims *output_dims, const int8_t *output)
{
    return input != NULL && output != NULL && tm_pool2d_geometry_ok(params, input_dims, output_dims) &&
           tm_activation_ok(&params->activation);
}

/* In-bounds part [*start, *end) of the window that begins at `origin`, in window coordinates. */
static inline void tm_pool2d_window(int32_t origin, int32_t size, int32_t extent, int32_t *start, int32_t *end)
{
    *start = origin < 0 ? -origin : 0;
    *end = extent - origin < size ? extent - origin : size;
}

/* Whether some output position's window lies wholly in the padding. */
static inline int tm_pool2d_has_empty_window(int32_t out_extent, int32_t stride, int32_t padding, int32_t size,
                                             int32_t extent)
{
    for (int32_t o = 0; o < out_extent; ++o) {
        int32_t start, end;
        tm_pool2d_window(o * stride - padding, size, extent, &start, &end);
        if (end <= start) {
            return 1;
        }
    }
    return 0;
}

/* AVERAGE_POOL_2D: the pool checks, and no window wholly in the padding (LiteRT fails on an empty window
 * mid-way; refusing up front keeps the output untouched). */
static inline int tm_pool2d_windows_nonempty(const tm_pool2d_params *params, const tm_dims *input_dims,
                                             const tm_dims *output_dims)
{
    return !tm_pool2d_has_empty_window(output_dims->h, params->stride.h, params->padding.h, params->filter.h,
                                       input_dims->h) &&
           !tm_pool2d_has_empty_window(output_dims->w, params->stride.w, params->padding.w, params->filter.w,
                                       input_dims->w);
}

static inline int tm_avg_pool2d_args_ok(const tm_pool2d_params *params, const tm_dims *input_dims,
                                        const int8_t *input, const tm_dims *output_dims, const int8_t *output)
{
    return tm_pool2d_args_ok(params, input_dims, input, output_dims, output) &&
           tm_pool2d_windows_nonempty(params, input_dims, output_dims);
}

/* The int16 pools: as the int8 ones, with int16 clamps; an average's int32 sum holds up to 65536 int16 values. */
static inline int tm_pool2d_s16_args_ok(const tm_pool2d_params *params, const tm_dims *input_dims,
                                        const int16_t *input, const tm_dims *output_dims, const int16_t *output)
{
    return input != NULL && output != NULL && tm_pool2d_geometry_ok(params, input_dims, output_dims) &&
           params->filter.h <= 65536 / params->filter.w && tm_activation_s16_ok(&params->activation);
}

/* ---- Element-wise and reductions ------------------------------------------------------------- */
/* ADD of same-shape tensors: the tensors (the parameters are each variant's own). */
static inline int tm_add_tensors_ok(const tm_dims *input1_dims, const int8_t *input1, const tm_dims *input2_dims,
                                    const int8_t *input2, const tm_dims *output_dims, const int8_t *output)
{
    return input1 != NULL && input2 != NULL && output != NULL && tm_dims_ok(input1_dims) && tm_dims_ok(input2_dims) &&
           tm_dims_ok(output_dims) && tm_same_dims(input1_dims, output_dims) && tm_same_dims(input2_dims, output_dims);
}

/* The dsp / mve spatial MEAN: output {n, 1, 1, c} of input {n, h, w, c}. */
static inline int tm_mean_args_ok(const tm_mean_params *params, const tm_dims *input_dims, const int8_t *input,
                                  const tm_dims *output_dims, const int8_t *output)
{
    return params != NULL && input != NULL && output != NULL && tm_dims_ok(input_dims) && tm_dims_ok(output_dims) &&
           output_dims->n == input_dims->n && output_dims->h == 1 && output_dims->w == 1 &&
           output_dims->c == input_dims->c && tm_shift_ok(params->shift);
}

/* A reduction (MEAN, REDUCE_MAX / MIN): each output dimension is the input's or 1. Output element
 * (a, b, c, d) reduces the input elements at (a + i, b + j, c + k, d + l) * stride for i < extent[0], ...: an
 * axis either has out[axis] == 1 and is walked (extent = input dim), or is kept (extent 1). */
typedef struct {
    int32_t out[4], extent[4], stride[4];
    int32_t count; /* input elements per output element */
} tm_reduction;

static inline int tm_reduction_init(tm_reduction *r, const tm_dims *input_dims, const tm_dims *output_dims)
{
    if (!tm_dims_ok(input_dims) || !tm_dims_ok(output_dims)) {
        return 0;
    }
    const int32_t in[4] = { input_dims->n, input_dims->h, input_dims->w, input_dims->c };
    const int32_t out[4] = { output_dims->n, output_dims->h, output_dims->w, output_dims->c };
    int32_t stride = 1;
    r->count = 1;
    for (int d = 3; d >= 0; --d) {
        if (out[d] != in[d] && out[d] != 1) {
            return 0;
        }
        r->out[d] = out[d];
        r->extent[d] = out[d] == in[d] ? 1 : in[d];
        r->stride[d] = stride;
        r->count *= r->extent[d];
        stride *= in[d];
    }
    return 1;
}

#endif /* TM_SUPPORT_H */
