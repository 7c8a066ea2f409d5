/*
 * uart_nrf_uarte.c - the nRF52 UARTE (UART with EasyDMA), polled (nRF52840 Product Specification,
 * UARTE chapter). EasyDMA reads only from RAM: each chunk is copied into a buffer in .bss, then
 *   TXD.PTR +0x544 = buffer, TXD.MAXCNT +0x548 = bytes, TASKS_STARTTX +0x008 = 1,
 *   wait EVENTS_ENDTX +0x120 (the last byte was read from RAM), clear it.
 * Set-up: PSEL.TXD +0x50C / PSEL.RXD +0x514 (pin number, bit 31 clear = connected), BAUDRATE +0x524
 * (0x01D7E000 = 115200 from the fixed 16 MHz peripheral clock: `clock_hz` is not used), CONFIG +0x56C = 0
 * (8N1, no flow control), ENABLE +0x500 = 8. Every write waits for its ENDTX; ENDTX says EasyDMA has read the
 * last byte, not that it has left the pin, so flush waits a few character times more.
 * Receive: EasyDMA into a one-byte buffer in RAM: RXD.PTR +0x534, RXD.MAXCNT +0x538 = 1, TASKS_STARTRX
 * +0x000; EVENTS_ENDRX +0x110 says the byte is in RAM. getc takes it, clears ENDRX and starts the next
 * one-byte transfer; bytes that arrive in between wait in the UARTE's RX FIFO (a few bytes deep), which
 * is enough for a host that waits for each reply. ERRORSRC +0x480 (overrun, framing, ...) is cleared by
 * writing its bits back.
 */
#include <stdint.h>

#include "tm_uart.h"

#define UARTE_REG(u, offset) (*(volatile uint32_t *)((u)->base + (offset)))
#define UARTE_TASKS_STARTRX(u) UARTE_REG(u, 0x000u)
#define UARTE_TASKS_STARTTX(u) UARTE_REG(u, 0x008u)
#define UARTE_EVENTS_ENDRX(u) UARTE_REG(u, 0x110u)
#define UARTE_EVENTS_ENDTX(u) UARTE_REG(u, 0x120u)
#define UARTE_EVENTS_ERROR(u) UARTE_REG(u, 0x124u)
#define UARTE_ERRORSRC(u) UARTE_REG(u, 0x480u)
#define UARTE_ENABLE(u) UARTE_REG(u, 0x500u)
#define UARTE_PSEL_RTS(u) UARTE_REG(u, 0x508u)
#define UARTE_PSEL_TXD(u) UARTE_REG(u, 0x50Cu)
#define UARTE_PSEL_CTS(u) UARTE_REG(u, 0x510u)
#define UARTE_PSEL_RXD(u) UARTE_REG(u, 0x514u)
#define UARTE_BAUDRATE(u) UARTE_REG(u, 0x524u)
#define UARTE_RXD_PTR(u) UARTE_REG(u, 0x534u)
#define UARTE_RXD_MAXCNT(u) UARTE_REG(u, 0x538u)
#define UARTE_TXD_PTR(u) UARTE_REG(u, 0x544u)
#define UARTE_TXD_MAXCNT(u) UARTE_REG(u, 0x548u)
#define UARTE_CONFIG(u) UARTE_REG(u, 0x56Cu)
#define UARTE_ENABLE_ON 8u
#define UARTE_PSEL_DISCONNECTED 0xFFFFFFFFu
#define UARTE_ENDTX_WAIT_LIMIT 10000000u /* a 64-byte chunk takes ~6 ms at 115200; never hang on a dead UART */

/* The baud-rate register values the product specification lists (not a formula of clock_hz). */
static uint32_t baudrate_value(uint32_t baud)
{
    switch (baud) {
    case 9600u:
        return 0x00275000u;
    case 115200u:
        return 0x01D7E000u;
    case 1000000u:
        return 0x10000000u;
    default:
        return 0x01D7E000u;
    }
}

static uint8_t tx_chunk[64]; /* in RAM (.bss): EasyDMA cannot read flash */
static volatile uint8_t rx_byte; /* EasyDMA writes each received byte here */

static void start_rx(const tm_uart *uart)
{
    UARTE_EVENTS_ENDRX(uart) = 0;
    UARTE_RXD_PTR(uart) = (uint32_t)(uintptr_t)&rx_byte;
    UARTE_RXD_MAXCNT(uart) = 1u;
    __asm volatile("dsb" ::: "memory");
    UARTE_TASKS_STARTRX(uart) = 1;
}

void tm_uart_nrf_uarte_init(const tm_uart *uart, uint32_t tx_pin, uint32_t rx_pin)
{
    UARTE_ENABLE(uart) = 0;
    UARTE_PSEL_TXD(uart) = tx_pin;
    UARTE_PSEL_RXD(uart) = rx_pin;
    UARTE_PSEL_RTS(uart) = UARTE_PSEL_DISCONNECTED;
    UARTE_PSEL_CTS(uart) = UARTE_PSEL_DISCONNECTED;
    UARTE_BAUDRATE(uart) = baudrate_value(uart->baud);
    UARTE_CONFIG(uart) = 0;
    UARTE_ENABLE(uart) = UARTE_ENABLE_ON;
    start_rx(uart);
}

/* Before init (the fault handler's write) the UARTE is disabled: drop the bytes. */
void tm_uart_nrf_uarte_write(const tm_uart *uart, const char *s, uint32_t n)
{
    if (UARTE_ENABLE(uart) != UARTE_ENABLE_ON) {
        return;
    }
    while (n > 0) {
        const uint32_t bytes = n < sizeof tx_chunk ? n : (uint32_t)sizeof tx_chunk;
        for (uint32_t i = 0; i < bytes; ++i) {
            tx_chunk[i] = (uint8_t)s[i];
        }
        UARTE_EVENTS_ENDTX(uart) = 0;
        UARTE_TXD_PTR(uart) = (uint32_t)(uintptr_t)tx_chunk;
        UARTE_TXD_MAXCNT(uart) = bytes;
        __asm volatile("dsb" ::: "memory"); /* the chunk is in RAM before EasyDMA reads it */
        UARTE_TASKS_STARTTX(uart) = 1;
        for (uint32_t i = 0; i < UARTE_ENDTX_WAIT_LIMIT && UARTE_EVENTS_ENDTX(uart) == 0; ++i) {
        }
        UARTE_EVENTS_ENDTX(uart) = 0;
        s += bytes;
        n -= bytes;
    }
}

#define UARTE_FLUSH_LOOPS 20000u /* >= 3 cycles each at 64 MHz: ~1 ms, over ten characters at 115200 */

void tm_uart_nrf_uarte_flush(const tm_uart *uart)
{
    if (UARTE_ENABLE(uart) != UARTE_ENABLE_ON) {
        return;
    }
    for (volatile uint32_t i = 0; i < UARTE_FLUSH_LOOPS; ++i) {
    }
}

int tm_uart_nrf_uarte_getc(const tm_uart *uart)
{
    if (UARTE_ENABLE(uart) != UARTE_ENABLE_ON) {
        return -1;
    }
    if (UARTE_EVENTS_ERROR(uart)) {
        UARTE_EVENTS_ERROR(uart) = 0;
        UARTE_ERRORSRC(uart) = UARTE_ERRORSRC(uart);
    }
    if (UARTE_EVENTS_ENDRX(uart) == 0) {
        return -1;
    }
    __asm volatile("dsb" ::: "memory"); /* EasyDMA's write is visible before the read */
    const int c = rx_byte;
    start_rx(uart);
    return c;
}
