/*
 * uart_stm32v2.c - the USART and LPUART of the newer STM32 families (L4/L4+, F7, H7, U5), transmit
 * only. Their register layout differs from the F4's (uart_stm32.c): control first, status in ISR,
 * data in TDR (RM0432 ch. 52/53, RM0385 ch. 34, RM0455 ch. 55/56, RM0456 ch. 68/69):
 *   CR1 +0x00 (bit 0 UE, bit 3 TE; FIFOEN bit 29 stays 0, so ISR bit 7 is TXE), BRR +0x0C,
 *   ISR +0x1C (bit 7 TXE, bit 6 TC), TDR +0x28.
 * Baud rate, 16x oversampling (CR1.OVER8 = 0) and PRESC left at its reset value (/1, or absent):
 *   USART:  BRR = f_ck / baud                  (e.g. 108 MHz / 115200 -> 938)
 *   LPUART: BRR = 256 * f_ck / baud, which must lie in [0x300, 0xFFFFF] (e.g. 120 MHz / 115200 -> 266667)
 * The board enables the peripheral's clock, selects its kernel clock and sets up the pins.
 */
#include <stdint.h>

#include "tm_uart.h"

#define UART_CR1(u) (*(volatile uint32_t *)((u)->base + 0x00u))
#define UART_BRR(u) (*(volatile uint32_t *)((u)->base + 0x0Cu))
#define UART_ISR(u) (*(volatile uint32_t *)((u)->base + 0x1Cu))
#define UART_TDR(u) (*(volatile uint32_t *)((u)->base + 0x28u))
#define UART_ISR_TXE (1u << 7)
#define UART_ISR_TC (1u << 6)
#define UART_CR1_UE (1u << 0)
#define UART_CR1_TE (1u << 3)

static void start(const tm_uart *uart, uint32_t brr)
{
    UART_CR1(uart) = 0; /* BRR is writable only while UE = 0 */
    UART_BRR(uart) = brr;
    UART_CR1(uart) = UART_CR1_UE | UART_CR1_TE;
}

void tm_uart_stm32v2_init(const tm_uart *uart)
{
    start(uart, (uart->clock_hz + uart->baud / 2u) / uart->baud);
}

void tm_uart_stm32v2_lpuart_init(const tm_uart *uart)
{
    start(uart, (uint32_t)((256ull * uart->clock_hz + uart->baud / 2u) / uart->baud));
}

/* A write before init (the fault handler's) finds UE clear and cannot know USART from LPUART: it returns
 * without output rather than hang on a TXE that never sets. */
void tm_uart_stm32v2_write(const tm_uart *uart, const char *s, uint32_t n)
{
    if ((UART_CR1(uart) & UART_CR1_UE) == 0) {
        return;
    }
    for (uint32_t i = 0; i < n; ++i) {
        while ((UART_ISR(uart) & UART_ISR_TXE) == 0) {
        }
        UART_TDR(uart) = (uint8_t)s[i];
    }
}

void tm_uart_stm32v2_flush(const tm_uart *uart)
{
    if ((UART_CR1(uart) & UART_CR1_UE) == 0) {
        return;
    }
    while ((UART_ISR(uart) & UART_ISR_TC) == 0) {
    }
}
