/*
 * ADD of same-shape int8 tensors for cores with the DSP extension: LiteRT's 64-bit double-rounding
 * rescales done with 32-bit SMMULR/SMMLAR, bit-exact (the derivation is in dsp/tm_add_s8.h).
 */
#include "tm_nn.h"
#include "tm_simd.h"
#include "tm_support.h"
#include "tm_add_s8.h"

/* One output element. equal: both factors are 1/2; clamp: the activation is narrower than int8. */
static TM_ALWAYS_INLINE int8_t add_one(int32_t a, int32_t b, const tm_add_s8_dsp_params *p, int equal, int clamp)
{
    int32_t twice_sum;
    if (equal) {
        twice_sum = (a + b) * (1 << 20) + p->input1_offset;
    } else {
        const int32_t x = b * (1 << 21) + p->input2_offset;
        const int32_t r2 = (tm_smmlar(x, p->input2_multiplier, p->input2_rounding) + (x >> 31)) >> p->input2_shift;
        twice_sum = a * (1 << 20) + p->input1_offset + r2 * 2;
    }
    int32_t y = (tm_smmlar(twice_sum, p->output_multiplier, p->output_rounding) + (twice_sum >> 31)) >> p->output_shift;
    y = tm_ssat(y, 8);
    if (clamp) {
        y = y < p->activation.min ? p->activation.min : y;
        y = y > p->activation.max ? p->activation.max : y;
    }
    return (int8_t)y;
}

static TM_ALWAYS_INLINE void add_loop(const tm_add_s8_dsp_params *p, const int8_t *in1, const int8_t *in2,
                                      int8_t *out, int32_t size, int equal, int clamp)
{
    /* Four per iteration: the loop's compare and branch are shared, the constants stay in registers. */
    int32_t n = size >> 2;
    while (n-- > 0) {
        out[0] = add_one(in1[0], in2[0], p, equal, clamp);
        out[1] = add_one(in1[1], in2[1], p, equal, clamp);
        out[2] = add_one(in1[2], in2[2], p, equal, clamp);
        out[3] = add_one(in1[3], in2[3], p, equal, clamp);
        in1 += 4;
        in2 += 4;
        out += 4;
    }
    for (int32_t i = 0; i < (size & 3); ++i) {
        out[i] = add_one(in1[i], in2[i], p, equal, clamp);
    }
}

tm_status tm_add_s8_dsp(const tm_context *ctx, const tm_add_s8_dsp_params *params,
                        const tm_dims *input1_dims, const int8_t *input1,
                        const tm_dims *input2_dims, const int8_t *input2,
                        const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (params == NULL || !tm_add_tensors_ok(input1_dims, input1, input2_dims, input2, output_dims, output) ||
        params->input2_shift < 0 || params->input2_shift > 31 || params->output_shift < 1 || params->output_shift > 31 || !tm_activation_ok(&params->activation)) {
        return TM_ARG_ERROR;
    }
    /* A local copy: the int8 stores may alias *params, which would force reloads per element. */
    const tm_add_s8_dsp_params p = *params;
    const int32_t size = tm_dims_size(output_dims);
    const int equal = p.input2_shift == 0;
    const int clamp = p.activation.min > -128 || p.activation.max < 127;
    if (equal) {
        if (clamp) {
            add_loop(&p, input1, input2, output, size, 1, 1);
        } else {
            add_loop(&p, input1, input2, output, size, 1, 0);
        }
    } else if (clamp) {
        add_loop(&p, input1, input2, output, size, 0, 1);
    } else {
        add_loop(&p, input1, input2, output, size, 0, 0);
    }
    return TM_OK;
}

int32_t tm_add_s8_dsp_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
