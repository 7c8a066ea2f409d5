/*
 * eembc_text.h - the text, number and clock helpers of the EEMBC runner mode (eembc.c): reply lines, the words of a
 * command line, decimal and hex parsing, fixed-point printing, microseconds. No libc string or 64-bit division
 * routines: newlib's assembly string compare and libgcc's __aeabi_uldivmod branch in ways the static stack bound
 * (toolchain/stackbound.py) cannot follow.
 */
#ifndef EEMBC_TEXT_H
#define EEMBC_TEXT_H

#include <stdint.h>

/* s, then the protocol's line end "\r\n". */
void ee_print_line(const char *s);

/* A decimal count, or -1 for anything else (empty, sign, other characters, over 2^31 - 1). */
int32_t ee_parse_count(const char *s);

/* 0-15 for a hex digit (either case), else -1. */
int ee_hex_digit(char c);

/* a == b. */
int ee_same(const char *a, const char *b);

/* The next space-separated word of the command line (modified in place), or NULL; `*rest` advances. */
char *ee_next_word(char **rest);

/* Microseconds since tm_board_init(), from the board's tick counter (64-bit: no wrap in practice). */
uint64_t ee_now_us(void);

/* x to three decimals, rounded half away from zero, like printf's "%0.3f" ("inf" beyond +-2e6, "nan"). */
void ee_print_fixed3(float x);

#endif /* EEMBC_TEXT_H */
