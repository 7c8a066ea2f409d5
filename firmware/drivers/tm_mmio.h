/*
 * tm_mmio.h - register access for the boards' board.c: a 32-bit memory-mapped register, and a bounded
 * wait for bits of one (a clock that never becomes ready must not hang the start-up: under an emulator
 * that models no clock tree the ready bits never set, and on silicon a failed PLL shows up as wrong baud
 * rate rather than silence).
 */
#ifndef TM_MMIO_H
#define TM_MMIO_H

#include <stdint.h>

#define TM_MMIO(addr) (*(volatile uint32_t *)(addr))

/* Oscillator start-up and PLL lock take well under 2 ms on the parts we support; at most 16 MHz at
 * that point (the reset clock) this limit is tens of milliseconds. */
#define TM_MMIO_WAIT_LIMIT 1000000u

static inline void tm_mmio_wait(volatile uint32_t *reg, uint32_t mask, uint32_t value)
{
    for (uint32_t i = 0; i < TM_MMIO_WAIT_LIMIT && (*reg & mask) != value; ++i) {
    }
}

#endif /* TM_MMIO_H */
