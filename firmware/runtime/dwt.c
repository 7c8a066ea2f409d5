/*
 * dwt.c - the DWT cycle counter behind tm_board_cycles(). Under QEMU the DWT is not modelled and
 * CYCCNT reads 0; on silicon it counts core clocks (wrapping at 2^32: difference two readings as
 * uint32_t). Cores without one (v6-M, v8-M Baseline) read 0 as well.
 */
#include <stdint.h>

#include "tm_board.h"
#include "tm_core.h"

void tm_dwt_start(void)
{
#if TM_HAS_CYCCNT
    DEMCR |= DEMCR_TRCENA;
    __asm volatile("dsb\n\tisb" ::: "memory");
    DWT_LAR = DWT_LAR_UNLOCK;
    if ((DWT_CTRL & DWT_CTRL_NOCYCCNT) == 0) {
        DWT_CYCCNT = 0;
        DWT_CTRL |= DWT_CTRL_CYCCNTENA;
    }
#endif
}

uint32_t tm_board_cycles(void)
{
#if TM_HAS_CYCCNT
    return DWT_CYCCNT;
#else
    return 0;
#endif
}
