/*
 * tm_uart.h - polled, transmit-only UART drivers. Each board describes its console UART with a
 * tm_uart and calls the driver for its kind of peripheral:
 *   uart_cmsdk.c  Arm CMSDK APB UART (MPS2/MPS3 FPGA images)
 *   uart_stm32.c  STM32F4 USART
 * Always 8N1. Writes block until the peripheral takes each byte; a write before init initialises the
 * UART first (the fault handler may print before tm_board_init() ran).
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

void tm_uart_stm32_init(const tm_uart *uart);
void tm_uart_stm32_write(const tm_uart *uart, const char *s, uint32_t n);
void tm_uart_stm32_flush(const tm_uart *uart);

#endif /* TM_UART_H */
