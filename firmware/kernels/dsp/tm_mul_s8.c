/*
 * MUL of int8 tensors for cores with the DSP extension: four elements a step, both operands widened with their
 * offsets by SXTAB16, multiplied with SMULBB/SMULTT, requantized in 32-bit SMMLAR arithmetic, bit-exact with
 * LiteRT (the derivation is in dsp/tm_mul_s8.h).
 */
#include "tm_nn.h"
#include "tm_simd.h"
#include "tm_support.h"
#include "tm_mul_s8.h"

/* The int16 lanes of a packed pair, in the form GCC multiplies with one SMULBB / SMULTT. */
static inline int32_t lane0(uint32_t x)
{
    return (int16_t)(x & 0xFFFFu);
}

static inline int32_t lane1(uint32_t x)
{
    return (int16_t)(x >> 16);
}

static inline uint32_t offset_pair(int32_t offset)
{
    return ((uint32_t)offset & 0xFFFFu) | ((uint32_t)offset << 16);
}

/* The output of x = product * 2^product_shift. right: right_shift >= 1; clamp: an activation narrower than int8. */
static TM_ALWAYS_INLINE int8_t requantize(int32_t x, const tm_mul_s8_dsp_params *p, int right, int clamp)
{
    int32_t y = tm_smmlar(x, p->multiplier, p->rounding);
    if (right) {
        y = (y + (x >> 31)) >> p->right_shift;
    }
    y = tm_ssat(y, 8);
    if (clamp) {
        y = y < p->activation.min ? p->activation.min : y;
        y = y > p->activation.max ? p->activation.max : y;
    }
    return (int8_t)y;
}

static TM_ALWAYS_INLINE int32_t scale(int32_t product, const tm_mul_s8_dsp_params *p, int right)
{
    /* right: product_shift is 1, which the caller folded into an operand */
    return right ? product : (int32_t)((uint32_t)product << p->product_shift);
}

/* Four outputs from the offset operands, lanes (0, 2) and (1, 3) of each as packed int16 pairs. */
static TM_ALWAYS_INLINE void mul4(uint32_t a02, uint32_t a13, uint32_t b02, uint32_t b13,
                                  const tm_mul_s8_dsp_params *p, int8_t *out, int right, int clamp)
{
    if (right) { /* |2 (x + offset)| <= 510: the doubling of x = 2 * product fits the int16 lanes */
        b02 = tm_sadd16(b02, b02);
        b13 = tm_sadd16(b13, b13);
    }
    out[0] = requantize(scale(lane0(a02) * lane0(b02), p, right), p, right, clamp);
    out[1] = requantize(scale(lane0(a13) * lane0(b13), p, right), p, right, clamp);
    out[2] = requantize(scale(lane1(a02) * lane1(b02), p, right), p, right, clamp);
    out[3] = requantize(scale(lane1(a13) * lane1(b13), p, right), p, right, clamp);
}

static TM_ALWAYS_INLINE int8_t mul1(int32_t a, int32_t b, const tm_mul_s8_dsp_params *p, int right, int clamp)
{
    const int32_t product = (a + p->input1_offset) * (b + p->input2_offset);
    return requantize((int32_t)((uint32_t)product << p->product_shift), p, right, clamp);
}

static TM_ALWAYS_INLINE void same_loop(const tm_mul_s8_dsp_params *p, const int8_t *in1, const int8_t *in2,
                                       int8_t *out, int32_t size, int right, int clamp)
{
    const uint32_t off1 = offset_pair(p->input1_offset), off2 = offset_pair(p->input2_offset);
    for (int32_t n = size >> 2; n > 0; --n) {
        const uint32_t w1 = tm_load_u32(in1), w2 = tm_load_u32(in2);
        mul4(tm_sxtab16(off1, w1), tm_sxtab16_ror8(off1, w1), tm_sxtab16(off2, w2), tm_sxtab16_ror8(off2, w2), p,
             out, right, clamp);
        in1 += 4;
        in2 += 4;
        out += 4;
    }
    for (int32_t i = 0; i < (size & 3); ++i) {
        out[i] = mul1(in1[i], in2[i], p, right, clamp);
    }
}

/* Pixel by pixel (the order in-place outputs need), each group of four gate values widened once per pixel. */
static TM_ALWAYS_INLINE void channel_loop(const tm_mul_s8_dsp_params *p, const int8_t *in, const int8_t *gate,
                                          int8_t *out, int32_t pixels, int32_t depth, int right, int clamp)
{
    const uint32_t off1 = offset_pair(p->input1_offset), off2 = offset_pair(p->input2_offset);
    for (int32_t pixel = 0; pixel < pixels; ++pixel) {
        const int8_t *g = gate;
        for (int32_t n = depth >> 2; n > 0; --n) {
            const uint32_t w = tm_load_u32(in), wg = tm_load_u32(g);
            mul4(tm_sxtab16(off1, w), tm_sxtab16_ror8(off1, w), tm_sxtab16(off2, wg), tm_sxtab16_ror8(off2, wg), p,
                 out, right, clamp);
            in += 4;
            g += 4;
            out += 4;
        }
        for (int32_t i = 0; i < (depth & 3); ++i) {
            out[i] = mul1(in[i], g[i], p, right, clamp);
        }
        in += depth & 3;
        out += depth & 3;
    }
}

static int params_ok(const tm_mul_s8_dsp_params *p)
{
    return p != NULL && p->input1_offset >= -127 && p->input1_offset <= 128 && p->input2_offset >= -127 &&
           p->input2_offset <= 128 && p->product_shift >= 1 && p->product_shift <= 14 && p->multiplier >= 0 &&
           p->right_shift >= 0 && p->right_shift <= 31 && (p->right_shift == 0 || p->product_shift == 1) &&
           tm_activation_ok(&p->activation);
}

tm_status tm_mul_s8_dsp(const tm_context *ctx, const tm_mul_s8_dsp_params *params,
                        const tm_dims *input1_dims, const int8_t *input1,
                        const tm_dims *input2_dims, const int8_t *input2,
                        const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (!params_ok(params) || !tm_add_tensors_ok(input1_dims, input1, input2_dims, input2, output_dims, output)) {
        return TM_ARG_ERROR;
    }
    /* A local copy: the int8 stores may alias *params, which would force reloads per element. */
    const tm_mul_s8_dsp_params p = *params;
    const int32_t size = tm_dims_size(output_dims);
    const int clamp = p.activation.min > -128 || p.activation.max < 127;
    if (p.right_shift > 0) {
        if (clamp) {
            same_loop(&p, input1, input2, output, size, 1, 1);
        } else {
            same_loop(&p, input1, input2, output, size, 1, 0);
        }
    } else if (clamp) {
        same_loop(&p, input1, input2, output, size, 0, 1);
    } else {
        same_loop(&p, input1, input2, output, size, 0, 0);
    }
    return TM_OK;
}

int32_t tm_mul_s8_dsp_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}

tm_status tm_mul_s8_dsp_channel(const tm_context *ctx, const tm_mul_s8_dsp_params *params,
                                const tm_dims *input1_dims, const int8_t *input1,
                                const tm_dims *input2_dims, const int8_t *input2,
                                const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (!params_ok(params) || input1 == NULL || input2 == NULL || output == NULL || !tm_dims_ok(input1_dims) ||
        !tm_dims_ok(input2_dims) || !tm_dims_ok(output_dims) || !tm_same_dims(input1_dims, output_dims) ||
        input2_dims->n != 1 || input2_dims->h != 1 || input2_dims->w != 1 || input2_dims->c != output_dims->c) {
        return TM_ARG_ERROR;
    }
    const tm_mul_s8_dsp_params p = *params;
    const int32_t depth = output_dims->c, pixels = tm_dims_size(output_dims) / depth;
    const int clamp = p.activation.min > -128 || p.activation.max < 127;
    if (p.right_shift > 0) {
        if (clamp) {
            channel_loop(&p, input1, input2, output, pixels, depth, 1, 1);
        } else {
            channel_loop(&p, input1, input2, output, pixels, depth, 1, 0);
        }
    } else if (clamp) {
        channel_loop(&p, input1, input2, output, pixels, depth, 0, 1);
    } else {
        channel_loop(&p, input1, input2, output, pixels, depth, 0, 0);
    }
    return TM_OK;
}

int32_t tm_mul_s8_dsp_channel_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
