/*
 * PAD / PADV2 with a constant (int8), NHWC. Works one output pixel row of channels at a time.
 */
#include "tm_nn.h"

#include <stddef.h>
#include <string.h>

static int dims_ok(const tm_dims *d)
{
    return d != NULL && d->n > 0 && d->h > 0 && d->w > 0 && d->c > 0;
}

static int fits(int32_t in, int32_t before, int32_t out)
{
    return before >= 0 && before <= out - in;
}

tm_status tm_pad_s8(const tm_dims *input_dims, const int8_t *input, const tm_dims *pad_before,
                    const tm_dims *output_dims, int8_t pad_value, int8_t *output)
{
    if (input == NULL || output == NULL || pad_before == NULL || !dims_ok(input_dims) || !dims_ok(output_dims) ||
        !fits(input_dims->n, pad_before->n, output_dims->n) || !fits(input_dims->h, pad_before->h, output_dims->h) ||
        !fits(input_dims->w, pad_before->w, output_dims->w) || !fits(input_dims->c, pad_before->c, output_dims->c)) {
        return TM_ARG_ERROR;
    }

    const int32_t c_in = input_dims->c, c_out = output_dims->c;
    const size_t after_c = (size_t)(c_out - pad_before->c - c_in);
    for (int32_t b = 0; b < output_dims->n; ++b) {
        const int32_t ib = b - pad_before->n;
        for (int32_t y = 0; y < output_dims->h; ++y) {
            const int32_t iy = y - pad_before->h;
            for (int32_t x = 0; x < output_dims->w; ++x) {
                const int32_t ix = x - pad_before->w;
                int8_t *out = output + ((b * output_dims->h + y) * output_dims->w + x) * c_out;
                if (ib < 0 || ib >= input_dims->n || iy < 0 || iy >= input_dims->h || ix < 0 || ix >= input_dims->w) {
                    memset(out, pad_value, (size_t)c_out);
                    continue;
                }
                const int8_t *in = input + ((ib * input_dims->h + iy) * input_dims->w + ix) * c_in;
                memset(out, pad_value, (size_t)pad_before->c);
                memcpy(out + pad_before->c, in, (size_t)c_in);
                memset(out + pad_before->c + c_in, pad_value, after_c);
            }
        }
    }
    return TM_OK;
}
