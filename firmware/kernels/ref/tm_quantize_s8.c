/*
 * QUANTIZE float -> int8 and DEQUANTIZE int8 -> float at the model's edges, bit-exact with
 * LiteRT's reference AffineQuantize / Dequantize (single-precision division and roundf).
 */
#include "tm_nn.h"

#include <math.h>
#include <stddef.h>

tm_status tm_quantize_f32_s8(const float *input, float scale, int32_t zero_point, int8_t *output,
                             int32_t size)
{
    if (input == NULL || output == NULL || size < 1 || !(scale > 0.0f) || zero_point < -128 || zero_point > 127) {
        return TM_ARG_ERROR;
    }

    for (int32_t i = 0; i < size; ++i) {
        const float r = roundf(input[i] / scale);
        /* Anything beyond [-256, 256] clamps the same way, and converting it to int would be UB for
         * huge values or NaN, which lands on -128 here. */
        const int32_t q = !(r >= -256.0f) ? -256 : (r > 256.0f ? 256 : (int32_t)r);
        const int32_t v = q + zero_point;
        output[i] = (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
    }
    return TM_OK;
}

tm_status tm_dequantize_s8_f32(const int8_t *input, float scale, int32_t zero_point, float *output,
                               int32_t size)
{
    if (input == NULL || output == NULL || size < 1 || !(scale > 0.0f) || zero_point < -128 || zero_point > 127) {
        return TM_ARG_ERROR;
    }

    /* LiteRT multiplies in double; the product of a float and a 9-bit integer is exact there,
     * so one float multiplication rounds to the same value. */
    for (int32_t i = 0; i < size; ++i) {
        output[i] = scale * (float)(input[i] - zero_point);
    }
    return TM_OK;
}
