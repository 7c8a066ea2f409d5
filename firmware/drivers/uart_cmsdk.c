/*
 * uart_cmsdk.c - Arm CMSDK APB UART, transmit only (Cortex-M System Design Kit TRM, DDI 0479).
 * Registers: DATA +0x00, STATE +0x04 (bit 0 TX buffer full), CTRL +0x08 (bit 0 TX enable),
 * BAUDDIV +0x10 (PCLK / baud, at least 16). There is no "shift register empty" flag: flush can only
 * wait for the buffer to drain.
 */
#include <stdint.h>

#include "tm_uart.h"

#define CMSDK_DATA(u) (*(volatile uint32_t *)((u)->base + 0x00u))
#define CMSDK_STATE(u) (*(volatile uint32_t *)((u)->base + 0x04u))
#define CMSDK_CTRL(u) (*(volatile uint32_t *)((u)->base + 0x08u))
#define CMSDK_BAUDDIV(u) (*(volatile uint32_t *)((u)->base + 0x10u))
#define CMSDK_STATE_TX_FULL (1u << 0)
#define CMSDK_CTRL_TX_EN (1u << 0)
#define CMSDK_BAUDDIV_MIN 16u

void tm_uart_cmsdk_init(const tm_uart *uart)
{
    uint32_t div = (uart->clock_hz + uart->baud / 2u) / uart->baud;
    CMSDK_CTRL(uart) = 0;
    CMSDK_BAUDDIV(uart) = div < CMSDK_BAUDDIV_MIN ? CMSDK_BAUDDIV_MIN : div;
    CMSDK_CTRL(uart) = CMSDK_CTRL_TX_EN;
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
