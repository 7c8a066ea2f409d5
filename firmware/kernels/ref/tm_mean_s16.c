/*
 * MEAN int16 over any axes, bit-exact with LiteRT's reference QuantizedMeanOrSum for int16: tm_mean_s8's int32
 * window sum (which wraps, as LiteRT's does) and single requantization, on symmetric int16 tensors.
 */
#include "tm_support.h"

static uint32_t window_sum(const tm_reduction *r, const int16_t *window)
{
    uint32_t sum = 0;
    for (int32_t i = 0; i < r->extent[0]; ++i) {
        for (int32_t j = 0; j < r->extent[1]; ++j) {
            for (int32_t k = 0; k < r->extent[2]; ++k) {
                const int16_t *p = window + i * r->stride[0] + j * r->stride[1] + k * r->stride[2];
                for (int32_t l = 0; l < r->extent[3]; ++l) {
                    sum += (uint32_t)(int32_t)p[l * r->stride[3]];
                }
            }
        }
    }
    return sum;
}

tm_status tm_mean_s16(const tm_context *ctx, const tm_mean_params *params,
                      const tm_dims *input_dims, const int16_t *input,
                      const tm_dims *output_dims, int16_t *output)
{
    (void)ctx;
    tm_reduction r;
    if (params == NULL || input == NULL || output == NULL || !tm_reduction_init(&r, input_dims, output_dims) ||
        !tm_shift_ok(params->shift) || params->input_offset != 0 || params->output_offset != 0) {
        return TM_ARG_ERROR;
    }
    const int32_t multiplier = params->multiplier, shift = params->shift;
    for (int32_t a = 0; a < r.out[0]; ++a) {
        for (int32_t b = 0; b < r.out[1]; ++b) {
            for (int32_t c = 0; c < r.out[2]; ++c) {
                const int16_t *row = input + a * r.stride[0] + b * r.stride[1] + c * r.stride[2];
                for (int32_t d = 0; d < r.out[3]; ++d) {
                    const int32_t scaled = tm_requantize((int32_t)window_sum(&r, row + d * r.stride[3]), multiplier,
                                                         shift);
                    *output++ = (int16_t)tm_clamp(scaled, INT16_MIN, INT16_MAX);
                }
            }
        }
    }
    return TM_OK;
}

int32_t tm_mean_s16_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
