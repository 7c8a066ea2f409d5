/*
 * PAD / PADV2 with a constant (int8), NHWC. Works one output pixel row of channels at a time.
 */
#include "tm_support.h"

#include <string.h>

static int fits(int32_t in, int32_t before, int32_t out)
{
    return before >= 0 && before <= out - in;
}

tm_status tm_pad_s8(const tm_context *ctx, const tm_pad_params *params,
                    const tm_dims *input_dims, const int8_t *input,
                    const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    if (params == NULL || input == NULL || output == NULL || !tm_dims_ok(input_dims) || !tm_dims_ok(output_dims) ||
        params->pad_value < -128 || params->pad_value > 127) {
        return TM_ARG_ERROR;
    }
    const tm_dims *before = &params->pad_before;
    if (!fits(input_dims->n, before->n, output_dims->n) || !fits(input_dims->h, before->h, output_dims->h) ||
        !fits(input_dims->w, before->w, output_dims->w) || !fits(input_dims->c, before->c, output_dims->c)) {
        return TM_ARG_ERROR;
    }

    const int pad_value = (int8_t)params->pad_value;
    const int32_t c_in = input_dims->c, c_out = output_dims->c;
    const size_t after_c = (size_t)(c_out - before->c - c_in);
    for (int32_t b = 0; b < output_dims->n; ++b) {
        const int32_t ib = b - before->n;
        for (int32_t y = 0; y < output_dims->h; ++y) {
            const int32_t iy = y - before->h;
            for (int32_t x = 0; x < output_dims->w; ++x) {
                const int32_t ix = x - before->w;
                int8_t *out = output + ((b * output_dims->h + y) * output_dims->w + x) * c_out;
                if (ib < 0 || ib >= input_dims->n || iy < 0 || iy >= input_dims->h || ix < 0 || ix >= input_dims->w) {
                    memset(out, pad_value, (size_t)c_out);
                    continue;
                }
                const int8_t *in = input + ((ib * input_dims->h + iy) * input_dims->w + ix) * c_in;
                memset(out, pad_value, (size_t)before->c);
                memcpy(out + before->c, in, (size_t)c_in);
                memset(out + before->c + c_in, pad_value, after_c);
            }
        }
    }
    return TM_OK;
}

int32_t tm_pad_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
