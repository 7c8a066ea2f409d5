/*
 * nrf52840-dk: board support for the nRF52840 (nRF52840 Product Specification). The core's clock is
 * fixed at 64 MHz, derived from HFCLK; out of reset HFCLK comes from the internal RC oscillator (HFINT).
 * tm_board_init() starts the 32 MHz crystal oscillator (HFXO: TASKS_HFCLKSTART, wait
 * EVENTS_HFCLKSTARTED), which makes the UART's baud rate and the cycle counts crystal-accurate.
 * Console: UARTE0 on P0.06 (TX) / P0.08 (RX), the DK's J-Link OB virtual COM port; TX is driven high
 * (idle) as an output before the UARTE takes it.
 */
#include <stdint.h>

#include "tm_board.h"
#include "tm_mmio.h"
#include "tm_runtime.h"
#include "tm_uart.h"

#define CLOCK_TASKS_HFCLKSTART TM_MMIO(0x40000000u)
#define CLOCK_EVENTS_HFCLKSTARTED TM_MMIO(0x40000100u)
#define P0_OUTSET TM_MMIO(0x50000508u)
#define P0_DIRSET TM_MMIO(0x50000518u)
#define P0_PIN_CNF(n) TM_MMIO(0x50000700u + 4u * (n))

#define TX_PIN 6u /* P0.06 */
#define RX_PIN 8u /* P0.08 */
#define PIN_CNF_INPUT_CONNECTED 0x0u /* DIR input, INPUT connected, no pull */

_Static_assert(TM_CORE_CLOCK_HZ == 64000000u, "board.toml clock_hz: the nRF52840's core runs at 64 MHz");

static const tm_uart console = {.base = TM_UART_BASE, .clock_hz = TM_UART_CLOCK_HZ, .baud = 115200u};

static void clocks_from_crystal(void)
{
    CLOCK_EVENTS_HFCLKSTARTED = 0;
    CLOCK_TASKS_HFCLKSTART = 1;
    tm_mmio_wait(&CLOCK_EVENTS_HFCLKSTARTED, 1u, 1u);
}

static void uarte0_pins(void)
{
    P0_OUTSET = 1u << TX_PIN;
    P0_DIRSET = 1u << TX_PIN;
    P0_PIN_CNF(RX_PIN) = PIN_CNF_INPUT_CONNECTED;
}

void tm_board_init(void)
{
    clocks_from_crystal();
    uarte0_pins();
    tm_uart_nrf_uarte_init(&console, TX_PIN, RX_PIN);
    tm_runtime_init();
}

TM_BOARD_CONSOLE(nrf_uarte, console)
