/*
 * tm_board.h - what every board provides to the applications in firmware/app (the benchmark harness),
 * firmware/app_eembc (the EEMBC runner mode) and firmware/selftest. Implemented by firmware/runtime
 * (core: startup, SysTick, exit, stack, faults) and by the board: boards/<name>/board.c (clocks, pins,
 * UART instance), or, for a board with no board.c, firmware/drivers/board_mps.c. Both take the name,
 * clocks and UART from the definitions the build generates from boards/<name>/board.toml
 * (TM_BOARD_NAME, TM_CORE_CLOCK_HZ, TM_UART_BASE, TM_UART_CLOCK_HZ, TM_NUM_IRQS).
 *
 * Timing: SysTick runs from the processor clock (CLKSOURCE = 1) with a 24-bit reload and an overflow
 * interrupt; tm_board_ticks() extends it to 64 bits. Under QEMU with -icount, SysTick advances with
 * executed instructions (see docs/PROTOCOL.md for the conversion); on silicon it counts core clocks.
 */
#ifndef TM_BOARD_H
#define TM_BOARD_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Clocks, UART, SysTick (started), DWT cycle counter (enabled where present). The FPU/MVE and the
 * fault handlers are already on when main() starts (Reset_Handler). Call once, first thing in main. */
void tm_board_init(void);

/* Board name as in boards/<name>/board.toml, e.g. "mps2-an386". */
const char *tm_board_name(void);

/* Blocking UART output of n bytes (no newline translation). Usable before tm_board_init() too: the
 * UART is set up on first use, so the fault handler can always print. */
void tm_board_write(const char *s, uint32_t n);

/* The console UART's next received byte (0-255), or -1 at once when none has arrived (never waits).
 * 115200 8N1 like the output; receive errors (an overrun lost bytes) are cleared and not reported. */
int tm_board_getc(void);

/* Monotonic 64-bit SysTick count since tm_board_init(); frequency tm_board_tick_hz(). Wrap-safe,
 * also with interrupts masked for less than one 2^24-tick SysTick period. */
uint64_t tm_board_ticks(void);
uint32_t tm_board_tick_hz(void);

/* DWT CYCCNT (reads 0 under QEMU, and on cores without a DWT cycle counter). */
uint32_t tm_board_cycles(void);

/* Fill the unused stack (below the current stack pointer) with a pattern now, early in main; later
 * report the most bytes ever used (the full size if the stack was never painted, or overflowed). */
void tm_stack_paint(void);
uint32_t tm_stack_used(void);
uint32_t tm_stack_size(void);

/* End the program: print "TM EXIT code=<code>", then request a system reset (QEMU -no-reboot exits);
 * builds with TM_EXIT_RESET=0 (a board running alone) stop in a low-power loop instead.
 * Exit codes: main's return value (startup passes it here), 3 after a fault (TM FAULT line). */
void tm_board_exit(int32_t code) __attribute__((noreturn));

/* Formatted output helpers on top of tm_board_write (no printf, no heap). */
void tm_print(const char *s);
void tm_print_u64(uint64_t v);
void tm_print_i32(int32_t v);
void tm_print_hex_bytes(const uint8_t *p, uint32_t n); /* two lowercase hex digits per byte, no spaces */

#ifdef __cplusplus
}
#endif

#endif /* TM_BOARD_H */
