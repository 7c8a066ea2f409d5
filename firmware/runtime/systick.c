/*
 * systick.c - the 64-bit tick count behind tm_board_ticks().
 *
 * SysTick counts down from 0xFFFFFF at the processor clock (CLKSOURCE = 1: boards without a
 * reference clock, such as QEMU's an505/an547, support only this) and interrupts at every 1 -> 0
 * transition; the handler counts those wraps. Elapsed ticks = wraps * 2^24 + (2^24 - CVR) mod 2^24,
 * which also holds for the first period: CVR is cleared at start and reloads one tick later.
 */
#include <stdint.h>

#include "tm_board.h"
#include "tm_runtime.h"
#include "tm_core.h"

static volatile uint32_t systick_wraps;

void SysTick_Handler(void)
{
    systick_wraps = systick_wraps + 1u;
}

void tm_systick_start(void)
{
    SYST_CSR = 0;
    systick_wraps = 0;
    SYST_RVR = SYST_RELOAD_MAX;
    SYST_CVR = 0; /* any write clears the counter and COUNTFLAG */
    SYST_CSR = SYST_CSR_CLKSOURCE | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}

uint64_t tm_board_ticks(void)
{
    for (;;) {
        const uint32_t wraps = systick_wraps;
        uint32_t current = SYST_CVR;
        const uint32_t wrap_pending = SCB_ICSR & SCB_ICSR_PENDSTSET;
        if (wraps != systick_wraps) {
            continue; /* the handler ran between the two reads */
        }
        uint32_t counted = wraps;
        if (wrap_pending) {
            /* The counter wrapped but the handler has not run (interrupts masked, or we are in a
             * handler of equal or higher priority): count that wrap here, and read the counter again
             * so that it is certainly a post-wrap value. */
            counted += 1u;
            current = SYST_CVR;
        }
        return ((uint64_t)counted << 24) + ((SYST_RELOAD_MAX + 1u - current) & SYST_RELOAD_MAX);
    }
}
