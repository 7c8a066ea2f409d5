/*
 * Board support shared by Arm's MPS2/MPS3 FPGA images (AN385, AN386, AN500, AN505, AN547): out of
 * reset the core already runs at its fixed FPGA clock and, where there is TrustZone, in Secure state
 * with everything Secure, so only the CMSDK UART needs setting up. CMake defines from board.toml:
 *   TM_BOARD_NAME     "mps2-an386" (name)
 *   TM_CORE_CLOCK_HZ  core (and SysTick, CLKSOURCE = 1) clock (clock_hz)
 *   TM_UART_BASE      the console UART, its Secure alias on TrustZone images ([uart] base)
 *   TM_UART_CLOCK_HZ  the UART's PCLK ([uart] clock_hz)
 */
#include <stdint.h>

#include "tm_board.h"
#include "tm_runtime.h"
#include "tm_uart.h"

#if !defined(TM_BOARD_NAME) || !defined(TM_CORE_CLOCK_HZ) || !defined(TM_UART_BASE) || !defined(TM_UART_CLOCK_HZ)
#error "the build (cmake/board_config.cmake) must define TM_BOARD_NAME, TM_CORE_CLOCK_HZ, TM_UART_BASE and TM_UART_CLOCK_HZ"
#endif

static const tm_uart console = {.base = TM_UART_BASE, .clock_hz = TM_UART_CLOCK_HZ, .baud = 115200u};

void tm_board_init(void)
{
    tm_uart_cmsdk_init(&console);
    tm_runtime_init();
}

TM_BOARD_CONSOLE(cmsdk, console)
