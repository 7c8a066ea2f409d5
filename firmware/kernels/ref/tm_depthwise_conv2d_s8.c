/*
 * DEPTHWISE_CONV_2D (int8), bit-exact with LiteRT's reference_integer_ops::DepthwiseConvPerChannel.
 */
#include "tm_support.h"

tm_status tm_depthwise_conv2d_s8(const tm_context *ctx, const tm_depthwise_conv2d_params *params,
                                 const tm_quant *quant,
                                 const tm_dims *input_dims, const int8_t *input,
                                 const tm_dims *filter_dims, const int8_t *filter,
                                 const int32_t *bias,
                                 const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (params == NULL || input == NULL || filter == NULL || output == NULL ||
        !tm_dims_ok(input_dims) || !tm_dims_ok(filter_dims) || !tm_dims_ok(output_dims) || params->ch_mult < 1) {
        return TM_ARG_ERROR;
    }
    if (filter_dims->n != 1 || filter_dims->c != (int64_t)input_dims->c * params->ch_mult ||
        output_dims->c != filter_dims->c || output_dims->n != input_dims->n) {
        return TM_ARG_ERROR;
    }
    if (!tm_window_ok(&params->stride, &params->dilation) || !tm_activation_ok(&params->activation) ||
        !tm_quant_ok(quant, output_dims->c)) {
        return TM_ARG_ERROR;
    }

    const int32_t h_in = input_dims->h, w_in = input_dims->w, c_in = input_dims->c;
    const int32_t kh = filter_dims->h, kw = filter_dims->w;
    const int32_t h_out = output_dims->h, w_out = output_dims->w, c_out = output_dims->c;
    /* Read once: the int8 stores may alias *params and *quant, which would force reloads per output. */
    const int32_t output_offset = params->output_offset;
    const int32_t act_min = params->activation.min, act_max = params->activation.max;
    const int32_t *const multiplier = quant->multiplier, *const shift = quant->shift;
    const int32_t per_channel = quant->per_channel;
    const int32_t ch_mult = params->ch_mult;

    for (int32_t b = 0; b < output_dims->n; ++b) {
        for (int32_t oy = 0; oy < h_out; ++oy) {
            const int32_t y0 = oy * params->stride.h - params->padding.h;
            for (int32_t ox = 0; ox < w_out; ++ox) {
                const int32_t x0 = ox * params->stride.w - params->padding.w;
                int8_t *out = output + ((b * h_out + oy) * w_out + ox) * c_out;
                for (int32_t oc = 0; oc < c_out; ++oc) {
                    const int32_t ic = oc / ch_mult;
                    int64_t acc = 0;
                    for (int32_t ky = 0; ky < kh; ++ky) {
                        const int32_t iy = y0 + params->dilation.h * ky;
                        if (iy < 0 || iy >= h_in) {
                            continue;
                        }
                        for (int32_t kx = 0; kx < kw; ++kx) {
                            const int32_t ix = x0 + params->dilation.w * kx;
                            if (ix < 0 || ix >= w_in) {
                                continue;
                            }
                            const int32_t in = input[((b * h_in + iy) * w_in + ix) * c_in + ic];
                            const int32_t f = filter[(ky * kw + kx) * c_out + oc];
                            acc += f * (in + params->input_offset);
                        }
                    }
                    if (bias != NULL) {
                        acc += bias[oc];
                    }
                    const int32_t q = per_channel ? oc : 0;
                    /* LiteRT accumulates in int32, which wraps; uint32 reproduces that. */
                    const int32_t scaled = tm_requantize((int32_t)(uint32_t)acc, multiplier[q], shift[q]);
                    out[oc] = (int8_t)tm_clamp(tm_wrapping_add(scaled, output_offset), act_min, act_max);
                }
            }
        }
    }
    return TM_OK;
}

int32_t tm_depthwise_conv2d_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                               const tm_dims *output_dims)
{
    (void)input_dims;
    (void)filter_dims;
    (void)output_dims;
    return 0;
}
