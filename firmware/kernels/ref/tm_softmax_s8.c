/*
 * SOFTMAX int8 -> int8 (output scale 1/256, zero point -128), bit-exact with LiteRT's
 * reference_ops::Softmax, which evaluates exp() and 1/x with gemmlowp's fixed-point routines.
 *
 * Values are raw int32 fixed-point numbers; "Fk" below means k integer bits and 31 - k
 * fractional bits. Multiplying an Fa by an Fb with SRDHM yields an F(a + b).
 */
#include "tm_support.h"

#define SRDHM tm_saturating_rounding_doubling_high_mul
#define RDBP tm_rounding_divide_by_pot

/* gemmlowp's SaturatingRoundingMultiplyByPOT for a positive exponent. */
static int32_t saturating_shift_left(int32_t x, int32_t exponent)
{
    const int32_t threshold = (int32_t)((1u << (31 - exponent)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return x * (1 << exponent);
}

/* exp(a) for an F0 a in [-1/4, 0): Taylor expansion around -1/8. Returns F0. */
static int32_t exp_on_interval_minus_quarter_to_zero(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668;
    const int32_t one_third = 715827883;
    const int32_t x = a + (1 << 28);
    const int32_t x2 = SRDHM(x, x);
    const int32_t x3 = SRDHM(x2, x);
    const int32_t x4 = SRDHM(x2, x2);
    const int32_t x4_over_4 = RDBP(x4, 2);
    const int32_t poly = RDBP(SRDHM(x4_over_4 + x3, one_third) + x2, 1);
    return exp_minus_one_eighth + SRDHM(exp_minus_one_eighth, x + poly);
}

/* exp(a) for an F5 a <= 0. Returns F0. */
static int32_t exp_on_negative_values(int32_t a)
{
    /*
     * For a < 0, a = r - m with r in [-1/4, 0) and m >= 0 a multiple of 1/4, so exp(a) =
     * exp(r) * exp(-m), and exp(-m) is the product of exp(-2^k), k = -2..4, over the set bits of m.
     * a == 0 would give m = -1/4 and is special-cased at the end.
     */
    static const int32_t exp_of_minus_pot[7] = {
        1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242,
    };
    const int32_t one_quarter = 1 << 24;
    const int32_t a_mod_minus_quarter = (a & (one_quarter - 1)) - one_quarter;
    /* F5 -> F0 is a shift left by 5 that cannot saturate: |a_mod_minus_quarter| <= 2^24. */
    int32_t result = exp_on_interval_minus_quarter_to_zero(a_mod_minus_quarter * 32);
    /* Only the bits are used, so let the subtraction wrap as gemmlowp's int32 one does. */
    const uint32_t remainder = (uint32_t)a_mod_minus_quarter - (uint32_t)a;
    for (int32_t k = 0; k < 7; ++k) {
        if (remainder & (1u << (24 + k))) {
            result = SRDHM(result, exp_of_minus_pot[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + a) for an F0 a in [0, 1), by three Newton-Raphson steps. Returns F0. */
static int32_t one_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    /* (a + 1) / 2, rounded half away from zero, with F0's 1 represented as INT32_MAX. */
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t f2_one = 1 << 29;
    /* F2 initial estimate 48/17 - 32/17 * half_denominator. */
    int32_t x = 1515870810 + SRDHM(half_denominator, -1010580540);
    for (int32_t i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = SRDHM(half_denominator, x);
        const int32_t one_minus = f2_one - half_denominator_times_x;
        x = x + saturating_shift_left(SRDHM(x, one_minus), 2);
    }
    /* x approximates 1 / half_denominator = 2 / (1 + a) in F2, i.e. 1 / (1 + a) in F1. */
    return saturating_shift_left(x, 1);
}

static int32_t count_leading_zeros(uint32_t x)
{
    int32_t n = 0;
    while (n < 32 && !(x & (0x80000000u >> n))) {
        ++n;
    }
    return n;
}

/* 1 / x for an F12 x > 0, as an F0 mantissa in [0.5, 1] and a power-of-two exponent. */
static int32_t reciprocal(int32_t x, int32_t *num_bits_over_unit)
{
    const int32_t headroom_plus_one = count_leading_zeros((uint32_t)x);
    *num_bits_over_unit = 12 - headroom_plus_one;
    const uint32_t normalized = headroom_plus_one < 32 ? (uint32_t)x << headroom_plus_one : 0u;
    return one_over_one_plus_x_for_x_in_0_1((int32_t)(normalized - 0x80000000u));
}

static int32_t rescaled_diff(const tm_softmax_params *params, int32_t diff)
{
    /* diff <= 0; LiteRT shifts it in int32, so let the shift wrap in the same way. */
    const int32_t shifted = (int32_t)((uint32_t)diff << params->input_left_shift);
    return SRDHM(shifted, params->input_multiplier);
}

tm_status tm_softmax_s8(const tm_context *ctx, const tm_softmax_params *params,
                        const tm_dims *input_dims, const int8_t *input,
                        const tm_dims *output_dims, int8_t *output)
{
    (void)ctx;
    /* diff_min > 0 would drop the row maximum and leave nothing to normalize by. */
    if (!tm_same_shape_args_ok(params, input_dims, input, output_dims, output) ||
        params->input_left_shift < 0 || params->input_left_shift > 31 || params->diff_min > 0) {
        return TM_ARG_ERROR;
    }

    const int32_t depth = input_dims->c;
    const int32_t rows = tm_dims_size(input_dims) / depth;

    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *in = input + r * depth;
        int8_t *out = output + r * depth;

        int32_t max_in_row = -128;
        for (int32_t c = 0; c < depth; ++c) {
            max_in_row = in[c] > max_in_row ? in[c] : max_in_row;
        }

        /* F12 sum; LiteRT adds in int32, which wraps. */
        uint32_t sum_of_exps = 0;
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t diff = in[c] - max_in_row;
            if (diff >= params->diff_min) {
                sum_of_exps += (uint32_t)RDBP(exp_on_negative_values(rescaled_diff(params, diff)), 12);
            }
        }

        int32_t num_bits_over_unit;
        const int32_t shifted_scale = reciprocal((int32_t)sum_of_exps, &num_bits_over_unit);
        /* Scale F0 probabilities to units of 1/256. */
        const int32_t exponent = num_bits_over_unit + 31 - 8;

        for (int32_t c = 0; c < depth; ++c) {
            const int32_t diff = in[c] - max_in_row;
            int32_t v = -128;
            /*
             * exponent > 31 means a sum of exps >= 512, where every probability is below 1/512 and
             * rounds to 0. LiteRT aborts on such rows, so there is no reference to match.
             */
            if (diff >= params->diff_min && exponent <= 31) {
                const int32_t exp_in_0 = exp_on_negative_values(rescaled_diff(params, diff));
                v = RDBP(SRDHM(shifted_scale, exp_in_0), exponent) - 128;
                v = v > 127 ? 127 : (v < -128 ? -128 : v);
            }
            out[c] = (int8_t)v;
        }
    }
    return TM_OK;
}

int32_t tm_softmax_s8_get_buffer_size(const tm_dims *input_dims, const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 0;
}
