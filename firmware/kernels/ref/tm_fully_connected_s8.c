/*
 * FULLY_CONNECTED (int8), bit-exact with LiteRT's reference kernel, which rescales the int32
 * accumulator with one rounding in double precision instead of a fixed-point multiplier. The double
 * multiply is emulated in integers (a Cortex-M4 has no double FPU, and soft-float costs ~300
 * instructions per output). tm_fully_connected_s8_tflm rounds as tflite-micro does instead (TFLite's
 * (multiplier, shift) double rounding, like conv).
 */
#include "tm_support.h"

#define MANTISSA_HI_MIN (UINT32_C(1) << 20) /* m in [2^52, 2^53): bits 52..32 in mantissa_hi */
#define MANTISSA_HI_END (UINT32_C(1) << 21)
#define EXPONENT_MIN (-1074)                /* m * 2^exponent spans the normal doubles */
#define EXPONENT_MAX 971

/* Bit length of x > 0. Define TM_NO_BUILTINS for a compiler without __builtin_clz. */
static int32_t bit_length(uint64_t x)
{
    const uint32_t hi = (uint32_t)(x >> 32);
    uint32_t w = hi != 0 ? hi : (uint32_t)x;
    int32_t n = hi != 0 ? 32 : 0;
#if defined(__GNUC__) && !defined(TM_NO_BUILTINS)
    n += 32 - __builtin_clz(w);
#else
    for (; w != 0; w >>= 1) {
        ++n;
    }
#endif
    return n;
}

/* |round(P * 2^exponent)| (half away from zero) after rounding the exact product P = high * 2^32 + low32
 * to 53 significant bits (to nearest, ties to even), as the double multiply does. high lies in
 * [2^20, 2^52), so P is 53 + dropped bits long with dropped in [0, 31]: the bits the double loses all
 * lie in low32. Results of 2^31 and more come back as 2^31. */
static uint32_t round_double_product(uint64_t high, uint32_t low32, int32_t exponent)
{
    const int32_t dropped = bit_length(high) - 21;
    uint64_t kept = (high << (32 - dropped)) | (low32 >> dropped); /* in [2^52, 2^53) */
    if (dropped > 0) {
        const uint32_t rest = low32 & ((UINT32_C(1) << dropped) - 1u), half = UINT32_C(1) << (dropped - 1);
        if (rest > half || (rest == half && (kept & 1u) != 0)) {
            ++kept; /* may reach 2^53, still exact */
        }
    }
    /* The double product is kept * 2^-shift; rounded half away from zero, it is at least 2^31 for
     * shift <= 21 and 0 for shift > 54. For shift >= 1,
     * floor(kept / 2^shift + 1/2) = (floor(kept / 2^(shift - 1)) + 1) / 2. */
    const int32_t shift = -(exponent + dropped);
    if (shift <= 21) {
        return UINT32_C(1) << 31;
    }
    if (shift > 54) {
        return 0;
    }
    const uint64_t rounded = ((kept >> (shift - 1)) + 1u) >> 1;
    return rounded >= (UINT64_C(1) << 31) ? UINT32_C(1) << 31 : (uint32_t)rounded;
}

/* round((double)acc * scale) saturated to int32, round() = half away from zero, for the normal double
 * scale = m * 2^exponent; no product of an int32 with a normal double overflows or is subnormal. */
static int32_t requantize(int32_t acc, uint32_t mantissa_hi, uint32_t mantissa_lo, int32_t exponent)
{
    const uint32_t magnitude = acc < 0 ? 0u - (uint32_t)acc : (uint32_t)acc;
    /* The exact product |acc| * m = high * 2^32 + low32, high < 2^52. */
    const uint64_t low = (uint64_t)magnitude * mantissa_lo;
    const uint64_t high = (uint64_t)magnitude * mantissa_hi + (low >> 32);
    const uint32_t low32 = (uint32_t)low;
    /* The result is floor((X' + 1) / 2) with X' = floor(round53(P) / 2^(32 + s)). Rounding to 53 bits
     * moves P by at most 2^30 and never past a multiple of 2^(32 + s) (those have few enough bits), so
     * X' = X = floor(P / 2^(32 + s)) unless P lies within 2^31 below the next multiple; P < 2^84. */
    const int32_t s = -exponent - 33;
    uint32_t rounded;
    if (magnitude == 0 || s > 52) {
        rounded = 0;
    } else if (s >= 0 && (((high + 1u) & ((UINT64_C(1) << s) - 1u)) != 0 || low32 < (UINT32_C(1) << 31))) {
        const uint64_t x = ((high >> s) + 1u) >> 1;
        rounded = x >= (UINT64_C(1) << 31) ? UINT32_C(1) << 31 : (uint32_t)x;
    } else {
        rounded = round_double_product(high, low32, exponent);
    }
    if (acc > 0) {
        return rounded > (uint32_t)INT32_MAX ? INT32_MAX : (int32_t)rounded;
    }
    return rounded >= (UINT32_C(1) << 31) ? INT32_MIN : -(int32_t)rounded;
}

/* Exported for the dsp / mve kernels: their fast requantization falls back on it near a rounding boundary. */
int32_t tm_fully_connected_requantize_litert(int32_t acc, uint32_t mantissa_hi, uint32_t mantissa_lo,
                                             int32_t exponent)
{
    return requantize(acc, mantissa_hi, mantissa_lo, exponent);
}

/* bias[oc] + sum((filter + filter_offset) * (input + input_offset)) over one row, wrapping like LiteRT's
 * int32 accumulator. The loop runs to an end pointer: counting an index, GCC (Arm, -O2) keeps one more
 * induction variable there, one instruction more per MAC. */
static int32_t dot(const tm_fully_connected_params *params, const int8_t *in, const int8_t *in_end,
                   const int8_t *f, const int32_t *bias, int32_t oc)
{
    int64_t acc = 0;
    for (const int8_t *x = in; x != in_end; ++x, ++f) {
        acc += ((int32_t)*f + params->filter_offset) * ((int32_t)*x + params->input_offset);
    }
    if (bias != NULL) {
        acc += bias[oc];
    }
    return (int32_t)(uint32_t)acc;
}

/* tflm == NULL: LiteRT's single rounding with `litert`; else TFLite's double rounding with `tflm`. */
static void fully_connected(const tm_fully_connected_params *params, const tm_fully_connected_quant *litert,
                            const tm_quant *tflm, int32_t batches, int32_t accum_depth, int32_t out_depth,
                            const int8_t *input, const int8_t *filter, const int32_t *bias, int8_t *output)
{
    const int64_t lo = params->activation.min, hi = params->activation.max;
    for (int32_t b = 0; b < batches; ++b) {
        const int8_t *in = input + b * accum_depth, *in_end = in + accum_depth;
        for (int32_t oc = 0; oc < out_depth; ++oc) {
            const int32_t acc = dot(params, in, in_end, filter + oc * accum_depth, bias, oc);
            int64_t v;
            if (tflm != NULL) {
                /* tflite-micro adds the output offset in int32, which wraps. */
                const int32_t c = tflm->per_channel ? oc : 0;
                v = tm_wrapping_add(tm_requantize(acc, tflm->multiplier[c], tflm->shift[c]), params->output_offset);
            } else {
                const int32_t c = litert->per_channel ? oc : 0;
                v = (int64_t)requantize(acc, litert->mantissa_hi[c], litert->mantissa_lo[c], litert->exponent[c]) +
                    params->output_offset;
            }
            /* |v| < 2^32, so clamping in int64 before narrowing is exact. */
            output[oc + out_depth * b] = (int8_t)(v < lo ? lo : (v > hi ? hi : v));
        }
    }
}

static int scales_ok(const tm_fully_connected_quant *q, int32_t channels)
{
    if (q == NULL || q->mantissa_hi == NULL || q->mantissa_lo == NULL || q->exponent == NULL) {
        return 0;
    }
    const int32_t count = q->per_channel ? channels : 1;
    for (int32_t i = 0; i < count; ++i) {
        if (q->mantissa_hi[i] < MANTISSA_HI_MIN || q->mantissa_hi[i] >= MANTISSA_HI_END ||
            q->exponent[i] < EXPONENT_MIN || q->exponent[i] > EXPONENT_MAX) {
            return 0;
        }
    }
    return 1;
}

static int args_ok(const tm_fully_connected_params *params, const tm_dims *input_dims, const int8_t *input,
                   const tm_dims *filter_dims, const int8_t *filter, const tm_dims *output_dims, const int8_t *output)
{
    return params != NULL && input != NULL && filter != NULL && output != NULL && tm_dims_ok(input_dims) &&
           tm_dims_ok(filter_dims) && tm_dims_ok(output_dims) && tm_activation_ok(&params->activation) &&
           filter_dims->c == input_dims->c && output_dims->n == input_dims->n && output_dims->c == filter_dims->n;
}

tm_status tm_fully_connected_s8(const tm_context *ctx, const tm_fully_connected_params *params,
                                const tm_fully_connected_quant *quant,
                                const tm_dims *input_dims, const int8_t *input,
                                const tm_dims *filter_dims, const int8_t *filter,
                                const int32_t *bias,
                                const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (!args_ok(params, input_dims, input, filter_dims, filter, output_dims, output) ||
        !scales_ok(quant, filter_dims->n)) {
        return TM_ARG_ERROR;
    }
    fully_connected(params, quant, NULL, input_dims->n, input_dims->c, filter_dims->n, input, filter, bias, output);
    return TM_OK;
}

tm_status tm_fully_connected_s8_tflm(const tm_context *ctx, const tm_fully_connected_params *params,
                                     const tm_quant *quant,
                                     const tm_dims *input_dims, const int8_t *input,
                                     const tm_dims *filter_dims, const int8_t *filter,
                                     const int32_t *bias,
                                     const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (!args_ok(params, input_dims, input, filter_dims, filter, output_dims, output) ||
        !tm_quant_ok(quant, filter_dims->n)) {
        return TM_ARG_ERROR;
    }
    fully_connected(params, NULL, quant, input_dims->n, input_dims->c, filter_dims->n, input, filter, bias, output);
    return TM_OK;
}

int32_t tm_fully_connected_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                              const tm_dims *output_dims)
{
    (void)input_dims;
    (void)filter_dims;
    (void)output_dims;
    return 0;
}

int32_t tm_fully_connected_s8_tflm_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                                   const tm_dims *output_dims)
{
    return tm_fully_connected_s8_get_buffer_size(input_dims, filter_dims, output_dims);
}
