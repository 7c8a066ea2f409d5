/*
 * uart_stm32v2.c - the USART and LPUART of the newer STM32 families (L4/L4+, F7, H7, U5), polled.
 * Their register layout differs from the F4's (uart_stm32.c): control first, status in ISR,
 * data in RDR/TDR (RM0432 ch. 52/53, RM0385 ch. 34, RM0455 ch. 55/56, RM0456 ch. 68/69):
 *   CR1 +0x00 (bit 0 UE, bit 2 RE, bit 3 TE; FIFOEN bit 29 stays 0, so ISR bit 7 is TXE and bit 5 RXNE),
 *   BRR +0x0C, ISR +0x1C (bit 7 TXE, bit 6 TC, bit 5 RXNE, bit 3 ORE, bit 2 NE, bit 1 FE, bit 0 PE),
 *   ICR +0x20 (the same bit positions: write 1 to clear ORE, NE, FE, PE), RDR +0x24, TDR +0x28.
 * Receive: reading RDR clears RXNE. An overrun (ORE: a byte came while RXNE was set) keeps RDR but blocks
 * further reception until cleared through ICR, which getc does; so are the noise/framing/parity flags.
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
#define UART_ICR(u) (*(volatile uint32_t *)((u)->base + 0x20u))
#define UART_RDR(u) (*(volatile uint32_t *)((u)->base + 0x24u))
#define UART_TDR(u) (*(volatile uint32_t *)((u)->base + 0x28u))
#define UART_ISR_TXE (1u << 7)
#define UART_ISR_TC (1u << 6)
#define UART_ISR_RXNE (1u << 5)
#define UART_ISR_ERRORS 0xFu /* ORE, NE, FE, PE; ICR clears them at the same positions */
#define UART_CR1_UE (1u << 0)
#define UART_CR1_RE (1u << 2)
#define UART_CR1_TE (1u << 3)

static void start(const tm_uart *uart, uint32_t brr)
{
    UART_CR1(uart) = 0; /* BRR is writable only while UE = 0 */
    UART_BRR(uart) = brr;
    UART_CR1(uart) = UART_CR1_UE | UART_CR1_TE | UART_CR1_RE;
}

void tm_uart_stm32v2_init(const tm_uart *uart)
{
    start(uart, (uart->clock_hz + uart->baud / 2u) / uart->baud);
}

/* 256 f / baud rounded, in 32-bit arithmetic: a 64-bit division would call libgcc's __aeabi_uldivmod, whose
 * internal branches leave the static stack bound (toolchain/stackbound.py) unknown. With f = q baud + r:
 * 256 f / baud = 256 q + 256 r / baud, and 256 r < 256 baud fits 32 bits. */
void tm_uart_stm32v2_lpuart_init(const tm_uart *uart)
{
    const uint32_t q = uart->clock_hz / uart->baud;
    const uint32_t r = uart->clock_hz % uart->baud;
    start(uart, 256u * q + (256u * r + uart->baud / 2u) / uart->baud);
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

int tm_uart_stm32v2_getc(const tm_uart *uart)
{
    if ((UART_CR1(uart) & UART_CR1_UE) == 0) {
        return -1;
    }
    const uint32_t isr = UART_ISR(uart);
    if (isr & UART_ISR_ERRORS) {
        UART_ICR(uart) = isr & UART_ISR_ERRORS;
    }
    if ((isr & UART_ISR_RXNE) == 0) {
        return -1;
    }
    return (int)(UART_RDR(uart) & 0xFFu);
}
