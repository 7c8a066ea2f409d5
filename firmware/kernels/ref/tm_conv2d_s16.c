/*
 * CONV_2D with int16 activations and int8 weights, bit-exact with LiteRT's reference ConvPerChannel for
 * int16: an int64 accumulator (the bias is int64) and TFLite's int64 MultiplyByQuantizedMultiplier.
 * Symmetric int16 tensors: no input or output offset.
 */
#include "tm_support.h"

static int64_t window_sum(const tm_conv2d_params *params, const tm_dims *in_dims, const int16_t *input,
                          const tm_dims *f_dims, const int8_t *filter, int32_t b, int32_t oy, int32_t ox)
{
    const int32_t y0 = oy * params->stride.h - params->padding.h, x0 = ox * params->stride.w - params->padding.w;
    int64_t acc = 0;
    for (int32_t ky = 0; ky < f_dims->h; ++ky) {
        const int32_t y = y0 + ky * params->dilation.h;
        if (y < 0 || y >= in_dims->h) {
            continue;
        }
        for (int32_t kx = 0; kx < f_dims->w; ++kx) {
            const int32_t x = x0 + kx * params->dilation.w;
            if (x < 0 || x >= in_dims->w) {
                continue;
            }
            const int16_t *in = input + ((b * in_dims->h + y) * in_dims->w + x) * in_dims->c;
            const int8_t *f = filter + (ky * f_dims->w + kx) * f_dims->c;
            for (int32_t ic = 0; ic < in_dims->c; ++ic) {
                acc += (int32_t)f[ic] * (int32_t)in[ic];
            }
        }
    }
    return acc;
}

tm_status tm_conv2d_s16(const tm_context *ctx, const tm_conv2d_params *params, const tm_quant *quant,
                        const tm_dims *input_dims, const int16_t *input,
                        const tm_dims *filter_dims, const int8_t *filter,
                        const int64_t *bias,
                        const tm_dims *output_dims, int16_t *output)
{
    (void)ctx;
    if (params == NULL || input == NULL || filter == NULL || output == NULL || !tm_dims_ok(input_dims) ||
        !tm_dims_ok(filter_dims) || !tm_dims_ok(output_dims) || filter_dims->c != input_dims->c ||
        output_dims->c != filter_dims->n || output_dims->n != input_dims->n ||
        !tm_window_ok(&params->stride, &params->dilation) || !tm_activation_s16_ok(&params->activation) ||
        params->input_offset != 0 || params->output_offset != 0 || !tm_quant_s64_ok(quant, output_dims->c)) {
        return TM_ARG_ERROR;
    }
    const int32_t filter_size = filter_dims->h * filter_dims->w * filter_dims->c;
    int16_t *out = output;
    for (int32_t b = 0; b < output_dims->n; ++b) {
        for (int32_t oy = 0; oy < output_dims->h; ++oy) {
            for (int32_t ox = 0; ox < output_dims->w; ++ox) {
                for (int32_t oc = 0; oc < output_dims->c; ++oc) {
                    int64_t acc = window_sum(params, input_dims, input, filter_dims, filter + oc * filter_size,
                                             b, oy, ox);
                    if (bias != NULL) {
                        acc += bias[oc];
                    }
                    const int32_t c = quant->per_channel ? oc : 0;
                    *out++ = (int16_t)tm_clamp(tm_requantize_s64(acc, quant->multiplier[c], quant->shift[c]),
                                               params->activation.min, params->activation.max);
                }
            }
        }
    }
    return TM_OK;
}

int32_t tm_conv2d_s16_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                      const tm_dims *output_dims)
{
    (void)input_dims;
    (void)filter_dims;
    (void)output_dims;
    return 0;
}
