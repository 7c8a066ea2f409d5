/*
 * MUL of int8 tensors with Helium: sixteen bytes a step, widened to int16 with their offsets, multiplied into
 * int32 products, requantized four lanes at a time and narrowed back, the last partial vector predicated (the
 * derivation is in mve/tm_mul_s8.h).
 */
#include "tm_nn.h"
#include "tm_support.h"
#include "tm_mul_s8.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>

typedef struct {
    int32x4_t output_offset;
    int8x16_t act_min, act_max;
    int16_t input1_offset, input2_offset;
    int32_t left_shift, multiplier, right_shift; /* right_shift negated: VRSHL shifts right by a negative count */
} constants;

/* right: right_shift >= 1 (and left_shift 0); else a left shift and no rounding divide. */
static TM_ALWAYS_INLINE int32x4_t requantize(const constants *k, int32x4_t product, int right)
{
    if (right) {
        const int32x4_t acc = vaddq_s32(k->output_offset, vshrq_n_s32(product, 31));
        return vrshlq_n_s32(vqrdmlahq_n_s32(acc, product, k->multiplier), k->right_shift);
    }
    return vqrdmlahq_n_s32(k->output_offset, vshlq_r_s32(product, k->left_shift), k->multiplier);
}

/* Sixteen outputs from sixteen input1 bytes and input2's offset values in int16 lanes (even bytes, odd bytes).
 * VMULLB/VMULLT of the even lanes give bytes (0, 4, 8, 12) and (2, 6, 10, 14); VQMOVNB/VQMOVNT put them back
 * in order, clamped to int8. clamp: the activation is narrower than int8. */
static TM_ALWAYS_INLINE int8x16_t mul16(const constants *k, int8x16_t a, int16x8_t b_even, int16x8_t b_odd,
                                        int right, int clamp)
{
    const int16x8_t a_even = vaddq_n_s16(vmovlbq_s8(a), k->input1_offset);
    const int16x8_t a_odd = vaddq_n_s16(vmovltq_s8(a), k->input1_offset);
    int16x8_t even = vqmovnbq_s32(vuninitializedq_s16(), requantize(k, vmullbq_int_s16(a_even, b_even), right));
    even = vqmovntq_s32(even, requantize(k, vmulltq_int_s16(a_even, b_even), right));
    int16x8_t odd = vqmovnbq_s32(vuninitializedq_s16(), requantize(k, vmullbq_int_s16(a_odd, b_odd), right));
    odd = vqmovntq_s32(odd, requantize(k, vmulltq_int_s16(a_odd, b_odd), right));
    int8x16_t y = vqmovntq_s16(vqmovnbq_s16(vuninitializedq_s8(), even), odd);
    if (clamp) {
        y = vminq_s8(vmaxq_s8(y, k->act_min), k->act_max);
    }
    return y;
}

static TM_ALWAYS_INLINE int16x8_t widen_even(int8x16_t b, int16_t offset)
{
    return vaddq_n_s16(vmovlbq_s8(b), offset);
}

static TM_ALWAYS_INLINE int16x8_t widen_odd(int8x16_t b, int16_t offset)
{
    return vaddq_n_s16(vmovltq_s8(b), offset);
}

static TM_ALWAYS_INLINE void same_loop(const constants *k, const int8_t *in1, const int8_t *in2, int8_t *out,
                                       int32_t size, int right, int clamp)
{
    for (; size >= 16; size -= 16) {
        const int8x16_t a = vldrbq_s8(in1), b = vldrbq_s8(in2);
        vstrbq_s8(out, mul16(k, a, widen_even(b, k->input2_offset), widen_odd(b, k->input2_offset), right, clamp));
        in1 += 16;
        in2 += 16;
        out += 16;
    }
    if (size > 0) {
        const mve_pred16_t p = vctp8q((uint32_t)size);
        const int8x16_t a = vldrbq_z_s8(in1, p), b = vldrbq_z_s8(in2, p);
        vstrbq_p_s8(out, mul16(k, a, widen_even(b, k->input2_offset), widen_odd(b, k->input2_offset), right, clamp),
                    p);
    }
}

/* Pixel by pixel (the order in-place outputs need). Up to 16 channels the widened gate stays in registers for
 * the whole tensor; beyond, each 16-channel slice of it is widened once per pixel. */
static TM_ALWAYS_INLINE void channel_loop(const constants *k, const int8_t *in, const int8_t *gate, int8_t *out,
                                          int32_t pixels, int32_t depth, int right, int clamp)
{
    if (depth <= 16) {
        const mve_pred16_t p = vctp8q((uint32_t)depth);
        const int8x16_t g = vldrbq_z_s8(gate, p);
        const int16x8_t g_even = widen_even(g, k->input2_offset), g_odd = widen_odd(g, k->input2_offset);
        for (int32_t pixel = 0; pixel < pixels; ++pixel) {
            vstrbq_p_s8(out, mul16(k, vldrbq_z_s8(in, p), g_even, g_odd, right, clamp), p);
            in += depth;
            out += depth;
        }
        return;
    }
    for (int32_t pixel = 0; pixel < pixels; ++pixel) {
        const int8_t *g = gate;
        int32_t left = depth;
        for (; left >= 16; left -= 16) {
            const int8x16_t gv = vldrbq_s8(g), a = vldrbq_s8(in);
            vstrbq_s8(out, mul16(k, a, widen_even(gv, k->input2_offset), widen_odd(gv, k->input2_offset), right,
                                 clamp));
            g += 16;
            in += 16;
            out += 16;
        }
        if (left > 0) {
            const mve_pred16_t p = vctp8q((uint32_t)left);
            const int8x16_t gv = vldrbq_z_s8(g, p), a = vldrbq_z_s8(in, p);
            vstrbq_p_s8(out, mul16(k, a, widen_even(gv, k->input2_offset), widen_odd(gv, k->input2_offset), right,
                                   clamp), p);
            in += left;
            out += left;
        }
    }
}

static int params_ok(const tm_mul_s8_mve_params *p)
{
    return p != NULL && p->input1_offset >= -127 && p->input1_offset <= 128 && p->input2_offset >= -127 &&
           p->input2_offset <= 128 && p->left_shift >= 0 && p->left_shift <= 14 && p->multiplier >= 0 &&
           p->right_shift >= 0 && p->right_shift <= 31 && (p->right_shift == 0 || p->left_shift == 0) &&
           tm_activation_ok(&p->activation);
}

static constants constants_of(const tm_mul_s8_mve_params *p)
{
    constants k;
    k.output_offset = vdupq_n_s32(p->output_offset);
    k.act_min = vdupq_n_s8((int8_t)p->activation.min);
    k.act_max = vdupq_n_s8((int8_t)p->activation.max);
    k.input1_offset = (int16_t)p->input1_offset;
    k.input2_offset = (int16_t)p->input2_offset;
    k.left_shift = p->left_shift;
    k.multiplier = p->multiplier;
    k.right_shift = -p->right_shift;
    return k;
}

tm_status tm_mul_s8_mve(const tm_context *ctx, const tm_mul_s8_mve_params *params,
                        const tm_dims *input1_dims, const int8_t *input1,
                        const tm_dims *input2_dims, const int8_t *input2,
                        const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (!params_ok(params) || !tm_add_tensors_ok(input1_dims, input1, input2_dims, input2, output_dims, output)) {
        return TM_ARG_ERROR;
    }
    const constants k = constants_of(params);
    const int32_t size = tm_dims_size(output_dims);
    const int clamp = params->activation.min > -128 || params->activation.max < 127;
    if (params->right_shift > 0) {
        if (clamp) {
            same_loop(&k, input1, input2, output, size, 1, 1);
        } else {
            same_loop(&k, input1, input2, output, size, 1, 0);
        }
    } else if (clamp) {
        same_loop(&k, input1, input2, output, size, 0, 1);
    } else {
        same_loop(&k, input1, input2, output, size, 0, 0);
    }
    return TM_OK;
}

tm_status tm_mul_s8_mve_channel(const tm_context *ctx, const tm_mul_s8_mve_params *params,
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
    const constants k = constants_of(params);
    const int32_t depth = output_dims->c, pixels = tm_dims_size(output_dims) / depth;
    const int clamp = params->activation.min > -128 || params->activation.max < 127;
    if (params->right_shift > 0) {
        if (clamp) {
            channel_loop(&k, input1, input2, output, pixels, depth, 1, 1);
        } else {
            channel_loop(&k, input1, input2, output, pixels, depth, 1, 0);
        }
    } else if (clamp) {
        channel_loop(&k, input1, input2, output, pixels, depth, 0, 1);
    } else {
        channel_loop(&k, input1, input2, output, pixels, depth, 0, 0);
    }
    return TM_OK;
}

#endif /* __ARM_FEATURE_MVE */

int32_t tm_mul_s8_mve_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}

int32_t tm_mul_s8_mve_channel_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
