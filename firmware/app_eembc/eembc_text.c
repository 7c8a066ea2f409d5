/*
 * eembc_text.c - the text, number and clock helpers of the EEMBC runner mode (see eembc_text.h).
 */
#include <stddef.h>
#include <stdint.h>

#include "eembc_text.h"
#include "tm_board.h"

void ee_print_line(const char *s)
{
    tm_print(s);
    tm_print("\r\n");
}

int32_t ee_parse_count(const char *s)
{
    if (s == NULL || *s == '\0') {
        return -1;
    }
    int64_t v = 0;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return -1;
        }
        v = v * 10 + (*s - '0');
        if (v > INT32_MAX) {
            return -1;
        }
    }
    return (int32_t)v;
}

int ee_hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int ee_same(const char *a, const char *b)
{
    while (*a != '\0' && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

char *ee_next_word(char **rest)
{
    char *s = *rest;
    while (*s == ' ') {
        s++;
    }
    if (*s == '\0') {
        *rest = s;
        return NULL;
    }
    char *word = s;
    while (*s != '\0' && *s != ' ') {
        s++;
    }
    if (*s == ' ') {
        *s++ = '\0';
    }
    *rest = s;
    return word;
}

/* n / d by shift and subtract (not libgcc's __aeabi_uldivmod, see eembc_text.h). */
static uint64_t divide_u64(uint64_t n, uint32_t d)
{
    uint64_t quotient = 0;
    uint64_t rem = 0;
    for (int32_t bit = 63; bit >= 0; bit--) {
        rem = rem << 1 | ((n >> bit) & 1u);
        if (rem >= d) {
            rem -= d;
            quotient |= (uint64_t)1 << bit;
        }
    }
    return quotient;
}

uint64_t ee_now_us(void)
{
    const uint64_t ticks = tm_board_ticks();
    const uint32_t hz = tm_board_tick_hz();
    const uint64_t seconds = divide_u64(ticks, hz);
    return seconds * 1000000u + divide_u64((ticks - seconds * hz) * 1000000u, hz);
}

/* In 32-bit arithmetic: a 64-bit division would call into libgcc (see eembc_text.h). */
void ee_print_fixed3(float x)
{
    if (x != x) {
        tm_print("nan");
        return;
    }
    const float limit = 2.0e6f;
    if (x > limit || x < -limit) {
        tm_print(x > 0.0f ? "inf" : "-inf");
        return;
    }
    const int32_t milli = (int32_t)(x * 1000.0f + (x >= 0.0f ? 0.5f : -0.5f));
    if (milli < 0 || x < 0.0f) {
        tm_print("-"); /* also -0.0004 -> -0.000, as printf does */
    }
    const uint32_t magnitude = (uint32_t)(milli < 0 ? -milli : milli);
    tm_print_u64(magnitude / 1000u);
    const uint32_t frac = magnitude % 1000u;
    const char digits[5] = {'.', (char)('0' + frac / 100u), (char)('0' + frac / 10u % 10u), (char)('0' + frac % 10u),
                            0};
    tm_print(digits);
}
