/*
 * Fixed-point helpers with gemmlowp / TFLite semantics. Bit-exactness with LiteRT depends on
 * reproducing their rounding exactly, including the double rounding of tm_requantize().
 */
#include "tm_nn.h"

int32_t tm_saturating_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    /* The only product whose doubled high half does not fit in int32. */
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    /* gemmlowp divides (truncating toward zero) rather than shifting (flooring). */
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* Rounds half away from zero. exponent must lie in [0, 31]. */
int32_t tm_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

int32_t tm_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    /* TFLite computes x * 2^left in int32 and lets it wrap; uint32 reproduces that without UB. */
    const int32_t shifted = (int32_t)((uint32_t)x << left);
    return tm_rounding_divide_by_pot(tm_saturating_rounding_doubling_high_mul(shifted, multiplier), right);
}
