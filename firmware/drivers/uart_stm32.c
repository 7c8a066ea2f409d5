/*
 * uart_stm32.c - STM32F4 USART, polled (RM0090, section 30.6).
 * Registers: SR +0x00 (bit 7 TXE, bit 6 TC, bit 5 RXNE, bit 3 ORE, bit 2 NF, bit 1 FE), DR +0x04,
 * BRR +0x08, CR1 +0x0C (bit 13 UE, bit 3 TE, bit 2 RE).
 * Receive: RXNE says DR holds a byte; reading SR then DR clears RXNE and the error flags (ORE: a byte
 * came while RXNE was still set, and was lost; NF/FE: the byte in DR was received with noise or a
 * framing error, and is returned anyway).
 * With 16x oversampling (CR1.OVER8 = 0) BRR = mantissa << 4 | fraction of USARTDIV = f_pclk / (16 baud),
 * which is f_pclk / baud rounded to an integer. The board enables the USART's bus clock and its pins.
 */
#include <stdint.h>

#include "tm_uart.h"

#define USART_SR(u) (*(volatile uint32_t *)((u)->base + 0x00u))
#define USART_DR(u) (*(volatile uint32_t *)((u)->base + 0x04u))
#define USART_BRR(u) (*(volatile uint32_t *)((u)->base + 0x08u))
#define USART_CR1(u) (*(volatile uint32_t *)((u)->base + 0x0Cu))
#define USART_SR_TXE (1u << 7)
#define USART_SR_TC (1u << 6)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_ORE (1u << 3)
#define USART_CR1_UE (1u << 13)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_RE (1u << 2)

void tm_uart_stm32_init(const tm_uart *uart)
{
    USART_CR1(uart) = 0;
    USART_BRR(uart) = (uart->clock_hz + uart->baud / 2u) / uart->baud;
    USART_CR1(uart) = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE;
}

void tm_uart_stm32_write(const tm_uart *uart, const char *s, uint32_t n)
{
    if ((USART_CR1(uart) & USART_CR1_UE) == 0) {
        tm_uart_stm32_init(uart);
    }
    for (uint32_t i = 0; i < n; ++i) {
        while ((USART_SR(uart) & USART_SR_TXE) == 0) {
        }
        USART_DR(uart) = (uint8_t)s[i];
    }
}

void tm_uart_stm32_flush(const tm_uart *uart)
{
    if ((USART_CR1(uart) & USART_CR1_UE) == 0) {
        return;
    }
    while ((USART_SR(uart) & USART_SR_TC) == 0) {
    }
}

int tm_uart_stm32_getc(const tm_uart *uart)
{
    const uint32_t sr = USART_SR(uart);
    if (sr & USART_SR_RXNE) {
        return (int)(USART_DR(uart) & 0xFFu);
    }
    if (sr & USART_SR_ORE) {
        (void)USART_DR(uart); /* SR then DR clears ORE */
    }
    return -1;
}
