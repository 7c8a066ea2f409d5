/*
 * TRANSPOSE_CONV (int8), bit-exact with LiteRT's reference_integer_ops::TransposeConv.
 *
 * LiteRT scatters every input pixel into an int32 copy of the whole output, then requantizes it. Here each
 * output pixel gathers the input pixels and filter taps that land on it instead: the same products, summed
 * modulo 2^32 like LiteRT's int32 adds, so the same accumulator in another order, without the scratch.
 */
#include "tm_support.h"

tm_status tm_transpose_conv_s8(const tm_context *ctx, const tm_transpose_conv_params *params,
                               const tm_quant *quant,
                               const tm_dims *input_dims, const int8_t *input,
                               const tm_dims *filter_dims, const int8_t *filter,
                               const int32_t *bias,
                               const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (!tm_transpose_conv_args_ok(params, quant, input_dims, input, filter_dims, filter, output_dims, output)) {
        return TM_ARG_ERROR;
    }

    const int32_t h_in = input_dims->h, w_in = input_dims->w, c_in = input_dims->c;
    const int32_t kh = filter_dims->h, kw = filter_dims->w;
    const int32_t h_out = output_dims->h, w_out = output_dims->w, c_out = output_dims->c;
    const int32_t stride_h = params->stride.h, stride_w = params->stride.w;
    const int32_t pad_h = params->padding.h, pad_w = params->padding.w;
    /* Read once: the int8 stores may alias *params and *quant, which would force reloads per output. */
    const int32_t input_offset = params->input_offset, output_offset = params->output_offset;
    const int32_t act_min = params->activation.min, act_max = params->activation.max;
    const int32_t *const multiplier = quant->multiplier, *const shift = quant->shift;
    const int32_t per_channel = quant->per_channel;

    for (int32_t b = 0; b < output_dims->n; ++b) {
        const int8_t *const image = input + b * h_in * w_in * c_in;
        for (int32_t oy = 0; oy < h_out; ++oy) {
            const int32_t ky0 = tm_transpose_conv_first_tap(oy, pad_h, stride_h);
            for (int32_t ox = 0; ox < w_out; ++ox) {
                const int32_t kx0 = tm_transpose_conv_first_tap(ox, pad_w, stride_w);
                int8_t *out = output + ((b * h_out + oy) * w_out + ox) * c_out;
                for (int32_t oc = 0; oc < c_out; ++oc) {
                    uint32_t acc = 0; /* LiteRT's int32 sum wraps; uint32 does so without undefined behaviour */
                    /* A later tap reads an earlier input row: stop once the row is above the input. */
                    for (int32_t ky = ky0; ky < kh && oy + pad_h - ky >= 0; ky += stride_h) {
                        const int32_t iy = (oy + pad_h - ky) / stride_h;
                        if (iy >= h_in) {
                            continue;
                        }
                        for (int32_t kx = kx0; kx < kw && ox + pad_w - kx >= 0; kx += stride_w) {
                            const int32_t ix = (ox + pad_w - kx) / stride_w;
                            if (ix >= w_in) {
                                continue;
                            }
                            const int8_t *in = image + (iy * w_in + ix) * c_in;
                            const int8_t *f = filter + ((oc * kh + ky) * kw + kx) * c_in;
                            for (int32_t ic = 0; ic < c_in; ++ic) {
                                acc += (uint32_t)((int32_t)f[ic] * ((int32_t)in[ic] + input_offset));
                            }
                        }
                    }
                    if (bias != NULL) {
                        acc += (uint32_t)bias[oc];
                    }
                    const int32_t q = per_channel ? oc : 0;
                    const int32_t scaled = tm_requantize((int32_t)acc, multiplier[q], shift[q]);
                    out[oc] = (int8_t)tm_clamp(tm_wrapping_add(scaled, output_offset), act_min, act_max);
                }
            }
        }
    }
    return TM_OK;
}

int32_t tm_transpose_conv_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                             const tm_dims *output_dims)
{
    (void)input_dims;
    (void)filter_dims;
    (void)output_dims;
    return 0;
}
