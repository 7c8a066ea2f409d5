/*
 * print.c - decimal and hex output on tm_board_write(), without printf or a heap.
 */
#include <stdint.h>
#include <string.h>

#include "tm_board.h"

void tm_print(const char *s)
{
    tm_board_write(s, (uint32_t)strlen(s));
}

void tm_print_u64(uint64_t v)
{
    char digits[20]; /* 2^64 - 1 has 20 digits */
    uint32_t i = sizeof digits;
    while (v > UINT32_MAX) { /* 64-bit division only while needed */
        digits[--i] = (char)('0' + (uint32_t)(v % 10u));
        v /= 10u;
    }
    uint32_t low = (uint32_t)v;
    do {
        digits[--i] = (char)('0' + low % 10u);
        low /= 10u;
    } while (low != 0);
    tm_board_write(&digits[i], (uint32_t)sizeof digits - i);
}

void tm_print_i32(int32_t v)
{
    if (v < 0) {
        tm_board_write("-", 1);
        tm_print_u64((uint64_t)(-(int64_t)v));
    } else {
        tm_print_u64((uint64_t)v);
    }
}

void tm_print_hex_bytes(const uint8_t *p, uint32_t n)
{
    static const char hex[16] = "0123456789abcdef";
    char chunk[64];
    while (n > 0) {
        const uint32_t bytes = n < sizeof chunk / 2 ? n : (uint32_t)sizeof chunk / 2;
        for (uint32_t i = 0; i < bytes; ++i) {
            chunk[2 * i] = hex[p[i] >> 4];
            chunk[2 * i + 1] = hex[p[i] & 0xFu];
        }
        tm_board_write(chunk, 2 * bytes);
        p += bytes;
        n -= bytes;
    }
}
