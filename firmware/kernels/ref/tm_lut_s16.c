/*
 * LOGISTIC and TANH int16, bit-exact with LiteRT's reference_integer_ops::Logistic / Tanh for int16: the
 * input rescaled so that 2^17 stands for 10.7, then a 256-entry sigmoid table interpolated linearly (9
 * fractional bits for sigmoid, 8 for tanh, which reads sigmoid at twice the argument).
 */
#include "tm_support.h"

static int16_t logistic(int32_t x, const uint16_t *table)
{
    const uint32_t magnitude = (uint32_t)(x < 0 ? -x : x);
    const uint32_t index = magnitude >> 9;
    uint32_t result = UINT32_C(0x7FFF) << 10; /* saturated */
    if (index < 255u) {
        const uint32_t low = table[index], high = table[index + 1];
        result = (low << 9) + (magnitude & 0x1ffu) * (high - low);
    }
    result = x >= 0 ? result + (1u << 9) : (1u << 25) - result + (1u << 9) - 1u;
    return (int16_t)(result >> 10);
}

static int16_t tanh_s16(int32_t x, const uint16_t *table)
{
    const uint32_t magnitude = (uint32_t)(x < 0 ? -x : x);
    const uint32_t index = magnitude >> 8;
    int32_t result = (int32_t)(UINT32_C(0xFFFF) << 8); /* saturated */
    if (index < 255u) {
        const uint32_t low = table[index], high = table[index + 1];
        result = (int32_t)((low << 8) + (magnitude & 0xffu) * (high - low));
    }
    result = x >= 0 ? result - (1 << 23) + (1 << 7) : -result + (1 << 23) + (1 << 7) - 1;
    return (int16_t)(result >> 8);
}

tm_status tm_lut_s16(const tm_context *ctx, const tm_lut_s16_params *params,
                     const tm_dims *input_dims, const int16_t *input,
                     const tm_dims *output_dims, int16_t *output)
{
    (void)ctx;
    if (!tm_same_shape_args_ok(params, input_dims, input, output_dims, output) || params->sigmoid_table == NULL ||
        params->input_multiplier < 0 || params->input_multiplier > 65535 || params->input_left_shift < 0 ||
        params->input_left_shift > 31) {
        return TM_ARG_ERROR;
    }
    int32_t multiplier = params->input_multiplier, shift = params->input_left_shift;
    if (multiplier == 0) { /* the power-of-two input scale */
        multiplier = 3 << shift;
        shift = 0;
    }
    const int32_t round = shift > 0 ? 1 << (shift - 1) : 0;
    const int32_t size = tm_dims_size(input_dims);
    for (int32_t i = 0; i < size; ++i) {
        const int32_t x = (input[i] * multiplier + round) >> shift;
        output[i] = params->tanh ? tanh_s16(x, params->sigmoid_table) : logistic(x, params->sigmoid_table);
    }
    return TM_OK;
}

int32_t tm_lut_s16_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
