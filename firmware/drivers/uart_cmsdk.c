/*
 * uart_cmsdk.c - Arm CMSDK APB UART, polled (Cortex-M System Design Kit TRM, DDI 0479).
 * Registers: DATA +0x00, STATE +0x04 (bit 0 TX buffer full, bit 1 RX buffer full, bit 3 RX overrun,
 * write 1 to clear), CTRL +0x08 (bit 0 TX enable, bit 1 RX enable), BAUDDIV +0x10 (PCLK / baud, at
 * least 16). There is no "shift register empty" flag: flush can only wait for the buffer to drain.
 * Receive: a one-byte buffer; reading DATA empties it. A byte arriving while it is full sets RX overrun
 * (the byte is lost), which getc clears.
 */
#include <stdint.h>

#include "tm_uart.h"

#define CMSDK_DATA(u) (*(volatile uint32_t *)((u)->base + 0x00u))
#define CMSDK_STATE(u) (*(volatile uint32_t *)((u)->base + 0x04u))
#define CMSDK_CTRL(u) (*(volatile uint32_t *)((u)->base + 0x08u))
#define CMSDK_BAUDDIV(u) (*(volatile uint32_t *)((u)->base + 0x10u))
#define CMSDK_STATE_TX_FULL (1u << 0)
#define CMSDK_STATE_RX_FULL (1u << 1)
#define CMSDK_STATE_RX_OVERRUN (1u << 3)
#define CMSDK_CTRL_TX_EN (1u << 0)
#define CMSDK_CTRL_RX_EN (1u << 1)
#define CMSDK_BAUDDIV_MIN 16u

void tm_uart_cmsdk_init(const tm_uart *uart)
{
    uint32_t div = (uart->clock_hz + uart->baud / 2u) / uart->baud;
    CMSDK_CTRL(uart) = 0;
    CMSDK_BAUDDIV(uart) = div < CMSDK_BAUDDIV_MIN ? CMSDK_BAUDDIV_MIN : div;
    CMSDK_CTRL(uart) = CMSDK_CTRL_TX_EN | CMSDK_CTRL_RX_EN;
}

void tm_uart_cmsdk_write(const tm_uart *uart, const char *s, uint32_t n)
{
    /* With TX disabled the buffer never drains and the wait below would hang. */
    if ((CMSDK_CTRL(uart) & CMSDK_CTRL_TX_EN) == 0) {
        tm_uart_cmsdk_init(uart);
    }
    for (uint32_t i = 0; i < n; ++i) {
        while (CMSDK_STATE(uart) & CMSDK_STATE_TX_FULL) {
        }
        CMSDK_DATA(uart) = (uint8_t)s[i];
    }
}

void tm_uart_cmsdk_flush(const tm_uart *uart)
{
    if ((CMSDK_CTRL(uart) & CMSDK_CTRL_TX_EN) == 0) {
        return;
    }
    while (CMSDK_STATE(uart) & CMSDK_STATE_TX_FULL) {
    }
}

int tm_uart_cmsdk_getc(const tm_uart *uart)
{
    const uint32_t state = CMSDK_STATE(uart);
    if (state & CMSDK_STATE_RX_OVERRUN) {
        CMSDK_STATE(uart) = CMSDK_STATE_RX_OVERRUN;
    }
    if ((state & CMSDK_STATE_RX_FULL) == 0) {
        return -1;
    }
    return (int)(CMSDK_DATA(uart) & 0xFFu);
}
