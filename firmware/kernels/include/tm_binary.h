/*
 * tm_binary.h - private to the kernels: the NumPy-broadcasting walk every element-wise binary kernel (ADD, SUB,
 * MUL, MAXIMUM, MINIMUM, SQUARED_DIFFERENCE) shares, with its argument checks, and the rescale of TFLite's
 * int8 ADD / SUB / SQUARED_DIFFERENCE. Each kernel supplies only its per-element function.
 */
#ifndef TM_BINARY_H
#define TM_BINARY_H

#include "tm_support.h"

/* One output element from the raw int8 inputs; `params` is the kernel's own parameter struct. */
typedef int8_t (*tm_binary_element)(int32_t x1, int32_t x2, const void *params);

/* LiteRT's MultiplyByQuantizedMultiplierSmallerThanOneExp: shift <= 0, applied after the multiply. */
static inline int32_t tm_scale_down(int32_t x, int32_t multiplier, int32_t shift)
{
    return tm_rounding_divide_by_pot(tm_saturating_rounding_doubling_high_mul(x, multiplier), -shift);
}

/* TFLite's ADD of two raw inputs before the clamp (int8, and int16's general-scale path): both rescaled to twice
 * the larger input scale after a left shift of headroom, summed, rescaled to the output. */
static inline int32_t tm_add_unclamped(int32_t x1, int32_t x2, const tm_arithmetic_params *p)
{
    /* LiteRT shifts and sums in int32, which wraps; uint32 reproduces that without UB. */
    const int32_t s1 = (int32_t)((uint32_t)(p->input1_offset + x1) << p->left_shift);
    const int32_t s2 = (int32_t)((uint32_t)(p->input2_offset + x2) << p->left_shift);
    const int32_t r1 = tm_scale_down(s1, p->input1_multiplier, p->input1_shift);
    const int32_t r2 = tm_scale_down(s2, p->input2_multiplier, p->input2_shift);
    const int32_t scaled = tm_scale_down(tm_wrapping_add(r1, r2), p->output_multiplier, p->output_shift);
    return tm_wrapping_add(scaled, p->output_offset);
}

static inline int tm_shift_down_ok(int32_t shift)
{
    return shift >= -31 && shift <= 0;
}

/* The ADD / SUB / SQUARED_DIFFERENCE parameters the kernels can apply. */
static inline int tm_arithmetic_ok(const tm_arithmetic_params *p)
{
    return p != NULL && p->left_shift >= 0 && p->left_shift <= 31 && tm_shift_down_ok(p->input1_shift) &&
           tm_shift_down_ok(p->input2_shift) && tm_shift_down_ok(p->output_shift) &&
           tm_activation_ok(&p->activation);
}

/* An input `dims` broadcasts to `out` and, walked with `stride`, never reads outside its elements. */
static inline int tm_broadcast_operand_ok(const tm_dims *stride, const tm_dims *dims, const tm_dims *out)
{
    const int32_t d[4] = {dims->n, dims->h, dims->w, dims->c};
    const int32_t o[4] = {out->n, out->h, out->w, out->c};
    const int32_t s[4] = {stride->n, stride->h, stride->w, stride->c};
    int64_t last = 0;
    for (int i = 0; i < 4; ++i) {
        if ((d[i] != o[i] && d[i] != 1) || s[i] < 0) {
            return 0;
        }
        last += (int64_t)(o[i] - 1) * s[i];
    }
    return last < (int64_t)tm_dims_size(dims);
}

static inline int tm_broadcast_args_ok(const tm_broadcast *broadcast, const tm_dims *input1_dims,
                                       const int8_t *input1, const tm_dims *input2_dims, const int8_t *input2,
                                       const tm_dims *output_dims, const int8_t *output)
{
    return broadcast != NULL && input1 != NULL && input2 != NULL && output != NULL && tm_dims_ok(input1_dims) &&
           tm_dims_ok(input2_dims) && tm_dims_ok(output_dims) &&
           tm_broadcast_operand_ok(&broadcast->input1_stride, input1_dims, output_dims) &&
           tm_broadcast_operand_ok(&broadcast->input2_stride, input2_dims, output_dims);
}

/* output[i] = element(input1[...], input2[...]) over the output in order. The innermost dimension is a run:
 * both inputs contiguous, or one of them a single value (the compiler's merged dimensions make these the
 * common cases); any other stride takes the general loop. Inlined into each kernel with its constant
 * `element`, so every kernel gets its own specialised loops. */
static TM_ALWAYS_INLINE void tm_broadcast_walk(const tm_broadcast *broadcast, const tm_dims *output_dims,
                                               const int8_t *input1, const int8_t *input2, int8_t *output,
                                               tm_binary_element element, const void *params)
{
    /* Copies: the int8 stores may alias *broadcast, which would force reloads. */
    const tm_dims s1 = broadcast->input1_stride, s2 = broadcast->input2_stride;
    const int32_t depth = output_dims->c;
    for (int32_t n = 0; n < output_dims->n; ++n) {
        for (int32_t h = 0; h < output_dims->h; ++h) {
            for (int32_t w = 0; w < output_dims->w; ++w) {
                const int8_t *a = input1 + n * s1.n + h * s1.h + w * s1.w;
                const int8_t *b = input2 + n * s2.n + h * s2.h + w * s2.w;
                if (s1.c == 1 && s2.c == 1) {
                    for (int32_t c = 0; c < depth; ++c) {
                        output[c] = element(a[c], b[c], params);
                    }
                } else if (s1.c == 0 && s2.c == 1) {
                    const int32_t x1 = a[0];
                    for (int32_t c = 0; c < depth; ++c) {
                        output[c] = element(x1, b[c], params);
                    }
                } else if (s1.c == 1 && s2.c == 0) {
                    const int32_t x2 = b[0];
                    for (int32_t c = 0; c < depth; ++c) {
                        output[c] = element(a[c], x2, params);
                    }
                } else {
                    for (int32_t c = 0; c < depth; ++c) {
                        output[c] = element(a[c * s1.c], b[c * s2.c], params);
                    }
                }
                output += depth;
            }
        }
    }
}

#endif /* TM_BINARY_H */
