/*
 * Self-test: proves a board's runtime end to end (UART, SysTick, stack painting, the exit line)
 * without a model. Prints
 *   TM SELFTEST board=<name> tick_hz=<hz>
 *   TM SELFTEST ticks=<n> stack=<used>/<size>
 * and returns 0. Under QEMU -icount the output is the same on every run; ticks measure a fixed
 * integer loop of TM_SELFTEST_ITERATIONS iterations.
 */
#include <stdint.h>

#include "tm_board.h"

#ifndef TM_SELFTEST_ITERATIONS
#define TM_SELFTEST_ITERATIONS 100000u
#endif

/* The loop's result goes here so that the compiler has to run it. */
volatile uint32_t tm_selftest_sink;

/* A linear congruential generator: no closed form the compiler could fold the loop into. */
__attribute__((noinline)) static uint32_t integer_loop(uint32_t iterations)
{
    uint32_t x = 1u;
    for (uint32_t i = 0; i < iterations; ++i) {
        x = x * 1664525u + 1013904223u;
    }
    return x;
}

int main(void)
{
    tm_board_init();
    tm_stack_paint();
    tm_print("TM SELFTEST board=");
    tm_print(tm_board_name());
    tm_print(" tick_hz=");
    tm_print_u64(tm_board_tick_hz());
    tm_print("\n");

    const uint64_t start = tm_board_ticks();
    tm_selftest_sink = integer_loop(TM_SELFTEST_ITERATIONS);
    const uint64_t ticks = tm_board_ticks() - start;

    tm_print("TM SELFTEST ticks=");
    tm_print_u64(ticks);
    tm_print(" stack=");
    tm_print_u64(tm_stack_used());
    tm_print("/");
    tm_print_u64(tm_stack_size());
    tm_print("\n");
    return 0;
}
