/*
 * FULLY_CONNECTED (int8), bit-exact with LiteRT's reference kernel, which rescales the int32
 * accumulator with one rounding in double precision instead of a fixed-point multiplier.
 */
#include "tm_nn.h"

#include <math.h>
#include <stddef.h>

static int8_t clamp(int64_t v, int32_t lo, int32_t hi)
{
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

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

tm_status tm_fully_connected_s8(const tm_context *ctx, const tm_fc_params *params, const double *scale,
                                int32_t batches, int32_t accum_depth, int32_t out_depth,
                                const int8_t *input, const int8_t *filter, const int32_t *bias,
                                int8_t *output)
{
    (void)ctx;
    if (params == NULL || scale == NULL || input == NULL || filter == NULL || output == NULL ||
        batches < 1 || accum_depth < 1 || out_depth < 1 ||
        params->activation.min < -128 || params->activation.min > params->activation.max ||
        params->activation.max > 127) {
        return TM_ARG_ERROR;
    }

    for (int32_t b = 0; b < batches; ++b) {
        const int8_t *in = input + b * accum_depth;
        for (int32_t oc = 0; oc < out_depth; ++oc) {
            const int8_t *f = filter + oc * accum_depth;
            int64_t acc = 0;
            for (int32_t d = 0; d < accum_depth; ++d) {
                acc += ((int32_t)f[d] + params->filter_offset) * ((int32_t)in[d] + params->input_offset);
            }
            if (bias != NULL) {
                acc += bias[oc];
            }
            /* LiteRT's accumulator is int32 and wraps; uint32 reproduces that. */
            const int32_t acc32 = (int32_t)(uint32_t)acc;
            const int64_t v = (int64_t)round_to_int32((double)acc32 * scale[params->per_channel ? oc : 0]) +
                              params->output_offset;
            output[oc + out_depth * b] = clamp(v, params->activation.min, params->activation.max);
        }
    }
    return TM_OK;
}

int32_t tm_fully_connected_s8_get_buffer_size(int32_t accum_depth)
{
    (void)accum_depth;
    return 0;
}
