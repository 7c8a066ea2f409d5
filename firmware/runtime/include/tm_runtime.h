/*
 * tm_runtime.h - the seam between firmware/runtime and boards/<name>/board.c. Applications use
 * tm_board.h only; this header is for board code.
 */
#ifndef TM_RUNTIME_H
#define TM_RUNTIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Called by each board's tm_board_init() once its clocks and UART are set up: starts SysTick
 * (processor clock, 24-bit reload, overflow interrupt) and the DWT cycle counter where present. */
void tm_runtime_init(void);

/* Provided by each board: return once every byte given to tm_board_write() has left the UART,
 * so that nothing is lost when tm_board_exit() stops the core. */
void tm_board_flush(void);

/* Stop for good: flush the UART, mask interrupts, sleep (a board running alone ends here). */
void tm_halt(void) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* TM_RUNTIME_H */
