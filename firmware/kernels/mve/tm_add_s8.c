/*
 * ADD of same-shape int8 tensors with Helium: LiteRT's double-rounding rescales four lanes at a time, the
 * last partial vector predicated (the derivation is in mve/tm_add_s8.h).
 */
#include "tm_nn.h"
#include "tm_support.h"
#include "tm_add_s8.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>

typedef struct {
    int32x4_t scale19, scale20; /* 2^19, 2^20 in every lane: VMLAS multiplies by a vector and adds a scalar */
    int32x4_t output_offset, act_min, act_max;
    int32_t input1_offset, input2_offset, input2_multiplier, input2_shift;
    int32_t output_multiplier, output_shift;
} constants;

/* Four outputs from four int32 lanes of each input. equal: input2's factor is 1/2 as well. */
static TM_ALWAYS_INLINE int32x4_t add4(const constants *k, int32x4_t a, int32x4_t b, int equal)
{
    int32x4_t sum;
    if (equal) {
        sum = vmlasq_n_s32(vaddq_s32(a, b), k->scale19, k->input1_offset);
    } else {
        const int32x4_t x = vmlasq_n_s32(b, k->scale20, k->input2_offset);
        int32x4_t r2 = vqrdmulhq_n_s32(x, k->input2_multiplier);
        r2 = vrshlq_n_s32(vaddq_s32(r2, vshrq_n_s32(r2, 31)), k->input2_shift);
        sum = vaddq_s32(vmlasq_n_s32(a, k->scale19, k->input1_offset), r2);
    }
    int32x4_t y = vqrdmlahq_n_s32(vaddq_s32(k->output_offset, vshrq_n_s32(sum, 31)), sum, k->output_multiplier);
    y = vrshlq_n_s32(y, k->output_shift);
    return vminq_s32(vmaxq_s32(y, k->act_min), k->act_max);
}

static TM_ALWAYS_INLINE void add_loop(const constants *k, const int8_t *in1, const int8_t *in2, int8_t *out,
                                      int32_t size, int equal)
{
    /* Whole vectors unpredicated (a predicated instruction costs a VPST outside a tail-predicated loop). */
    for (int32_t blocks = size >> 3; blocks > 0; --blocks) {
        const int32x4_t a0 = vldrbq_s32(in1), b0 = vldrbq_s32(in2);
        const int32x4_t a1 = vldrbq_s32(in1 + 4), b1 = vldrbq_s32(in2 + 4);
        vstrbq_s32(out, add4(k, a0, b0, equal));
        vstrbq_s32(out + 4, add4(k, a1, b1, equal));
        in1 += 8;
        in2 += 8;
        out += 8;
    }
    for (int32_t left = size & 7; left > 0; left -= 4) {
        const mve_pred16_t p = vctp32q((uint32_t)left);
        const int32x4_t y = add4(k, vldrbq_z_s32(in1, p), vldrbq_z_s32(in2, p), equal);
        vstrbq_p_s32(out, y, p);
        in1 += 4;
        in2 += 4;
        out += 4;
    }
}

tm_status tm_add_s8_mve(const tm_context *ctx, const tm_add_s8_mve_params *params,
                        const tm_dims *input1_dims, const int8_t *input1,
                        const tm_dims *input2_dims, const int8_t *input2,
                        const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (params == NULL || !tm_add_tensors_ok(input1_dims, input1, input2_dims, input2, output_dims, output) ||
        params->input2_shift < 0 || params->input2_shift > 31 || params->output_shift < 1 || params->output_shift > 31 || !tm_activation_ok(&params->activation)) {
        return TM_ARG_ERROR;
    }
    constants k;
    k.scale19 = vdupq_n_s32(1 << 19);
    k.scale20 = vdupq_n_s32(1 << 20);
    k.output_offset = vdupq_n_s32(params->output_offset);
    k.act_min = vdupq_n_s32(params->activation.min);
    k.act_max = vdupq_n_s32(params->activation.max);
    k.input1_offset = params->input1_offset;
    k.input2_offset = params->input2_offset;
    k.input2_multiplier = params->input2_multiplier;
    k.input2_shift = -params->input2_shift; /* VRSHL shifts right by a negative count */
    k.output_multiplier = params->output_multiplier;
    k.output_shift = -params->output_shift;
    const int32_t size = tm_dims_size(output_dims);
    if (params->input2_shift == 0) {
        add_loop(&k, input1, input2, output, size, 1);
    } else {
        add_loop(&k, input1, input2, output, size, 0);
    }
    return TM_OK;
}

#endif /* __ARM_FEATURE_MVE */

int32_t tm_add_s8_mve_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
