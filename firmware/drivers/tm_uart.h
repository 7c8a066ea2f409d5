/*
 * tm_uart.h - polled UART drivers. Each board describes its console UART with a
 * tm_uart and calls the driver for its kind of peripheral:
 *   uart_cmsdk.c  Arm CMSDK APB UART (MPS2/MPS3 FPGA images)
 *   uart_stm32.c      STM32F4 USART (SR/DR layout)
 *   uart_stm32v2.c    STM32L4/L4+/F7/H7/U5 USART and LPUART (ISR/TDR layout)
 *   uart_nrf_uarte.c  nRF52 UARTE (EasyDMA)
 * Always 8N1. Writes block until the peripheral takes each byte. On the emulated boards (CMSDK, STM32F4)
 * a write before init initialises the UART first (the fault handler may print before tm_board_init()
 * ran); the stm32v2 and nrf_uarte drivers drop such a write instead (the peripheral's bus clock or pins are
 * the board's to set up, and a wait on a peripheral without its clock would never end).
 * Init enables the receiver too; getc never waits: the next received byte (0-255), or -1 when none is
 * there (or the UART is not set up). It also clears receive errors (overrun: bytes were lost).
 */
#ifndef TM_UART_H
#define TM_UART_H

#include <stdint.h>

typedef struct {
    uintptr_t base;    /* register block */
    uint32_t clock_hz; /* peripheral clock feeding the baud-rate generator */
    uint32_t baud;     /* e.g. 115200 */
} tm_uart;

void tm_uart_cmsdk_init(const tm_uart *uart);
void tm_uart_cmsdk_write(const tm_uart *uart, const char *s, uint32_t n);
void tm_uart_cmsdk_flush(const tm_uart *uart);
int tm_uart_cmsdk_getc(const tm_uart *uart);

void tm_uart_stm32_init(const tm_uart *uart);
void tm_uart_stm32_write(const tm_uart *uart, const char *s, uint32_t n);
void tm_uart_stm32_flush(const tm_uart *uart);
int tm_uart_stm32_getc(const tm_uart *uart);

/* USART: BRR = f / baud; LPUART: BRR = 256 f / baud. Write, flush and getc serve both. */
void tm_uart_stm32v2_init(const tm_uart *uart);
void tm_uart_stm32v2_lpuart_init(const tm_uart *uart);
void tm_uart_stm32v2_write(const tm_uart *uart, const char *s, uint32_t n);
void tm_uart_stm32v2_flush(const tm_uart *uart);
int tm_uart_stm32v2_getc(const tm_uart *uart);

/* clock_hz is unused (the UARTE has a fixed 16 MHz clock); base: UARTE0 0x40002000. tx_pin/rx_pin in
 * tm_uart_nrf_uarte_init: GPIO numbers (port << 5 | pin). */
void tm_uart_nrf_uarte_init(const tm_uart *uart, uint32_t tx_pin, uint32_t rx_pin);
void tm_uart_nrf_uarte_write(const tm_uart *uart, const char *s, uint32_t n);
void tm_uart_nrf_uarte_flush(const tm_uart *uart);
int tm_uart_nrf_uarte_getc(const tm_uart *uart);

/* The board's console (tm_board_write, tm_board_flush and tm_board_getc of tm_board.h) on `uart`, a tm_uart of the
 * driver `kind` (cmsdk, stm32, stm32v2, nrf_uarte): each board.c names its console once instead of writing the
 * three forwarding functions. */
#define TM_BOARD_CONSOLE(kind, uart)                                                                              \
    void tm_board_write(const char *s, uint32_t n)                                                                \
    {                                                                                                             \
        tm_uart_##kind##_write(&(uart), s, n);                                                                    \
    }                                                                                                             \
    void tm_board_flush(void)                                                                                     \
    {                                                                                                             \
        tm_uart_##kind##_flush(&(uart));                                                                          \
    }                                                                                                             \
    int tm_board_getc(void)                                                                                       \
    {                                                                                                             \
        return tm_uart_##kind##_getc(&(uart));                                                                    \
    }

#endif /* TM_UART_H */
