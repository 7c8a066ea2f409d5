/*
 * mps2-an500: board support. Out of reset the core already runs at its fixed FPGA clock and, where there
 * is TrustZone, in Secure state with everything Secure: nothing to set up but the UART.
 */
#include <stdint.h>

#include "tm_board.h"
#include "tm_runtime.h"
#include "tm_uart.h"

#define CORE_CLOCK_HZ 25000000u

/* UART0 of the MPS2 FPGA image; PCLK = the 25 MHz system clock. */
static const tm_uart console = {.base = 0x40004000u, .clock_hz = 25000000u, .baud = 115200u};

void tm_board_init(void)
{
    tm_uart_cmsdk_init(&console);
    tm_runtime_init();
}

const char *tm_board_name(void)
{
    return "mps2-an500";
}

uint32_t tm_board_tick_hz(void)
{
    return CORE_CLOCK_HZ;
}

void tm_board_write(const char *s, uint32_t n)
{
    tm_uart_cmsdk_write(&console, s, n);
}

void tm_board_flush(void)
{
    tm_uart_cmsdk_flush(&console);
}
