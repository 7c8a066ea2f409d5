/*
 * FULLY_CONNECTED with int16 activations and int8 weights, bit-exact with LiteRT's reference kernel:
 * an int64 accumulator rescaled with one rounding in double precision. Unlike the int8 kernel, the
 * accumulator can exceed 32 bits, so the double multiply is done in double (software on a Cortex-M4)
 * rather than emulated in integers.
 */
#include <math.h>

#include "tm_support.h"

/* static_cast<int32_t>(round(x)) as LiteRT computes it on x86: a value outside int32 (undefined in C++)
 * converts to INT32_MIN there; reproduced here without the undefined conversion. */
static int32_t round_to_int32(double x)
{
    const double r = round(x);
    return (r >= -2147483648.0 && r <= 2147483647.0) ? (int32_t)r : INT32_MIN;
}

static int64_t dot(const int16_t *in, const int16_t *in_end, const int8_t *f)
{
    int64_t acc = 0;
    for (const int16_t *x = in; x != in_end; ++x, ++f) {
        acc += (int32_t)*f * (int32_t)*x;
    }
    return acc;
}

tm_status tm_fully_connected_s16(const tm_context *ctx, const tm_fully_connected_params *params,
                                 const tm_fully_connected_s16_quant *quant,
                                 const tm_dims *input_dims, const int16_t *input,
                                 const tm_dims *filter_dims, const int8_t *filter,
                                 const int64_t *bias,
                                 const tm_dims *output_dims, int16_t *output)
{
    (void)ctx;
    if (params == NULL || quant == NULL || quant->scale == NULL || input == NULL || filter == NULL ||
        output == NULL || !tm_dims_ok(input_dims) || !tm_dims_ok(filter_dims) || !tm_dims_ok(output_dims) ||
        !tm_activation_s16_ok(&params->activation) || filter_dims->c != input_dims->c ||
        output_dims->n != input_dims->n || output_dims->c != filter_dims->n || params->input_offset != 0 ||
        params->filter_offset != 0 || params->output_offset != 0) {
        return TM_ARG_ERROR;
    }
    const int32_t batches = input_dims->n, depth = input_dims->c, units = filter_dims->n;
    const int64_t lo = params->activation.min, hi = params->activation.max;
    for (int32_t b = 0; b < batches; ++b) {
        const int16_t *in = input + b * depth;
        for (int32_t oc = 0; oc < units; ++oc) {
            int64_t acc = dot(in, in + depth, filter + oc * depth);
            if (bias != NULL) {
                acc += bias[oc];
            }
            const int64_t v = round_to_int32((double)acc * quant->scale[quant->per_channel ? oc : 0]);
            output[oc + units * b] = (int16_t)(v < lo ? lo : (v > hi ? hi : v));
        }
    }
    return TM_OK;
}

int32_t tm_fully_connected_s16_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                               const tm_dims *output_dims)
{
    (void)input_dims;
    (void)filter_dims;
    (void)output_dims;
    return 0;
}
