/*
 * board_info.c - the board's name and tick clock, from the definitions CMake generates out of the
 * board's board.toml (TM_BOARD_NAME, TM_CORE_CLOCK_HZ): the same for every board, said once.
 */
#include "tm_board.h"

#if !defined(TM_BOARD_NAME) || !defined(TM_CORE_CLOCK_HZ)
#error "TM_BOARD_NAME and TM_CORE_CLOCK_HZ come from board.toml through CMake (cmake/board_config.cmake)"
#endif

const char *tm_board_name(void)
{
    return TM_BOARD_NAME;
}

/* SysTick counts the processor clock (CLKSOURCE=1) on every board we support. */
uint32_t tm_board_tick_hz(void)
{
    return TM_CORE_CLOCK_HZ;
}
