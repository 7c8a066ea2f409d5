/*
 * MEAN over any axes (int8), bit-exact with LiteRT's reference QuantizedMeanOrSum: the int32 sum of a window,
 * the input zero point taken off once per element, then one requantization (the division by the window's
 * element count is folded into (multiplier, shift) by the compiler).
 */
#include "tm_support.h"

/* LiteRT sums in int32, which wraps; uint32 reproduces that without undefined behaviour. */
static uint32_t window_sum(const tm_reduction *r, const int8_t *window)
{
    uint32_t sum = 0;
    for (int32_t i = 0; i < r->extent[0]; ++i) {
        for (int32_t j = 0; j < r->extent[1]; ++j) {
            for (int32_t k = 0; k < r->extent[2]; ++k) {
                const int8_t *p = window + i * r->stride[0] + j * r->stride[1] + k * r->stride[2];
                for (int32_t l = 0; l < r->extent[3]; ++l) {
                    sum += (uint32_t)(int32_t)p[l * r->stride[3]];
                }
            }
        }
    }
    return sum;
}

tm_status tm_mean_s8(const tm_context *ctx, const tm_mean_params *params,
                     const tm_dims *input_dims, const int8_t *input,
                     const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    tm_reduction r;
    if (params == NULL || input == NULL || output == NULL || !tm_reduction_init(&r, input_dims, output_dims) ||
        !tm_shift_ok(params->shift)) {
        return TM_ARG_ERROR;
    }
    /* Read once: the int8 stores may alias *params, which would force reloads per output. */
    const int32_t output_offset = params->output_offset;
    const int32_t multiplier = params->multiplier, shift = params->shift;
    /* LiteRT takes zero_point * count off in int64 and keeps the low 32 bits: the same modulo 2^32. */
    const uint32_t offset_sum = (uint32_t)params->input_offset * (uint32_t)r.count;
    for (int32_t a = 0; a < r.out[0]; ++a) {
        for (int32_t b = 0; b < r.out[1]; ++b) {
            for (int32_t c = 0; c < r.out[2]; ++c) {
                const int8_t *row = input + a * r.stride[0] + b * r.stride[1] + c * r.stride[2];
                for (int32_t d = 0; d < r.out[3]; ++d) {
                    const uint32_t acc = offset_sum + window_sum(&r, row + d * r.stride[3]);
                    const int32_t scaled = tm_requantize((int32_t)acc, multiplier, shift);
                    *output++ = (int8_t)tm_clamp(tm_wrapping_add(scaled, output_offset), -128, 127);
                }
            }
        }
    }
    return TM_OK;
}

int32_t tm_mean_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
