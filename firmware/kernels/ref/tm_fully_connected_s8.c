/*
 * FULLY_CONNECTED (int8), bit-exact with LiteRT's reference kernel, which rescales the int32
 * accumulator with one rounding in double precision instead of a fixed-point multiplier.
 */
#include "tm_support.h"

#include <math.h>

/* Converting an out-of-range (or NaN) double to int32 is undefined, so saturate first. */
static int32_t round_to_int32(double v)
{
    const double r = round(v);
    if (!(r >= (double)INT32_MIN)) {
        return INT32_MIN;
    }
    if (r > (double)INT32_MAX) {
        return INT32_MAX;
    }
    return (int32_t)r;
}

/* The inner loop runs to an end pointer: counting an index, GCC (Arm, -O2) keeps one more induction
 * variable there, one instruction more per MAC. */
static void fully_connected(const tm_fully_connected_params *params, const tm_fully_connected_quant *quant,
                            int32_t batches, int32_t accum_depth, int32_t out_depth,
                            const int8_t *input, const int8_t *filter, const int32_t *bias, int8_t *output)
{
    for (int32_t b = 0; b < batches; ++b) {
        const int8_t *in = input + b * accum_depth, *in_end = in + accum_depth;
        for (int32_t oc = 0; oc < out_depth; ++oc) {
            const int8_t *f = filter + oc * accum_depth;
            int64_t acc = 0;
            for (const int8_t *x = in; x != in_end; ++x, ++f) {
                acc += ((int32_t)*f + params->filter_offset) * ((int32_t)*x + params->input_offset);
            }
            if (bias != NULL) {
                acc += bias[oc];
            }
            /* LiteRT's accumulator is int32 and wraps; uint32 reproduces that. */
            const int32_t acc32 = (int32_t)(uint32_t)acc;
            const int64_t v = (int64_t)round_to_int32((double)acc32 * quant->scale[quant->per_channel ? oc : 0]) +
                              params->output_offset;
            /* |v| < 2^32, so clamping in int64 before narrowing is exact. */
            const int64_t lo = params->activation.min, hi = params->activation.max;
            output[oc + out_depth * b] = (int8_t)(v < lo ? lo : (v > hi ? hi : v));
        }
    }
}

tm_status tm_fully_connected_s8(const tm_context *ctx, const tm_fully_connected_params *params,
                                const tm_fully_connected_quant *quant,
                                const tm_dims *input_dims, const int8_t *input,
                                const tm_dims *filter_dims, const int8_t *filter,
                                const int32_t *bias,
                                const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (params == NULL || quant == NULL || quant->scale == NULL || input == NULL || filter == NULL ||
        output == NULL || !tm_dims_ok(input_dims) || !tm_dims_ok(filter_dims) || !tm_dims_ok(output_dims) ||
        !tm_activation_ok(&params->activation)) {
        return TM_ARG_ERROR;
    }
    if (filter_dims->c != input_dims->c || output_dims->n != input_dims->n || output_dims->c != filter_dims->n) {
        return TM_ARG_ERROR;
    }
    fully_connected(params, quant, input_dims->n, input_dims->c, filter_dims->n, input, filter, bias, output);
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
