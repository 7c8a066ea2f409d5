/*
 * runtime.c - what tm_board_init() hands over to the shared runtime once the board's clocks run.
 */
#include "tm_core.h"
#include "tm_runtime.h"

void tm_runtime_init(void)
{
    tm_dwt_start();
    tm_systick_start();
}
