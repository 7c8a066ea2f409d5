/*
 * netduinoplus2: board support for the STM32F405RG (RM0090). Out of reset the core runs from the
 * 16 MHz HSI oscillator; tm_board_init() raises it to 168 MHz through the PLL, fed from HSI so that
 * no crystal frequency is assumed:
 *   HSI 16 MHz / PLLM 8 = 2 MHz -> x PLLN 168 = 336 MHz VCO -> / PLLP 2 = 168 MHz SYSCLK (/ PLLQ 7 = 48 MHz)
 *   AHB /1 = 168 MHz, APB1 /4 = 42 MHz, APB2 /2 = 84 MHz (USART1's clock), flash 5 wait states.
 * QEMU models no RCC (its registers read 0) but runs the core and SysTick at 168 MHz anyway; the
 * waits for the PLL are therefore bounded, and fall through under QEMU.
 * Console: USART1 on PA9 (TX) / PA10 (RX), alternate function 7, 115200 8N1.
 */
#include <stdint.h>

#include "tm_board.h"
#include "tm_runtime.h"
#include "tm_uart.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

#define RCC_CR REG(0x40023800u)
#define RCC_PLLCFGR REG(0x40023804u)
#define RCC_CFGR REG(0x40023808u)
#define RCC_AHB1ENR REG(0x40023830u)
#define RCC_APB1ENR REG(0x40023840u)
#define RCC_APB2ENR REG(0x40023844u)
#define PWR_CR REG(0x40007000u)
#define FLASH_ACR REG(0x40023C00u)
#define GPIOA_MODER REG(0x40020000u)
#define GPIOA_AFRH REG(0x40020024u)

#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_PLLCFGR_FIELDS 0x0F437FFFu /* PLLQ, PLLSRC, PLLP, PLLN, PLLM; the rest is reserved */
#define RCC_PLLCFGR_VALUE ((7u << 24) | (0u << 22) | (0u << 16) | (168u << 6) | (8u << 0))
#define RCC_CFGR_SW_PLL 0x2u
#define RCC_CFGR_SWS_MASK (0x3u << 2)
#define RCC_CFGR_SWS_PLL (0x2u << 2)
#define RCC_CFGR_PPRE1_DIV4 (0x5u << 10)
#define RCC_CFGR_PPRE2_DIV2 (0x4u << 13)
#define RCC_CFGR_PRESCALERS 0x0000FCF0u /* PPRE2, PPRE1, HPRE */
#define RCC_CFGR_SW_MASK 0x3u
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_APB1ENR_PWREN (1u << 28)
#define RCC_APB2ENR_USART1EN (1u << 4)
#define PWR_CR_VOS (1u << 14) /* regulator scale 1, needed above 144 MHz */
#define FLASH_ACR_5WS_CACHES ((1u << 10) | (1u << 9) | (1u << 8) | 5u) /* DCEN, ICEN, PRFTEN, 5 WS */
#define CLOCK_WAIT_LIMIT 100000u /* PLL lock takes ~100 us on silicon; never ends under QEMU */

/* The name, the clocks and the UART come from board.toml (CMake defines them); the PLL and bus
 * prescalers below must produce the clocks it states. */
_Static_assert(TM_CORE_CLOCK_HZ == 168000000u, "board.toml clock_hz: the PLL settings give 168 MHz");
_Static_assert(TM_UART_CLOCK_HZ == 84000000u, "board.toml [uart] clock_hz: USART1 is on APB2, 84 MHz");

static const tm_uart console = {.base = TM_UART_BASE, .clock_hz = TM_UART_CLOCK_HZ, .baud = 115200u};

static void wait_for(volatile uint32_t *reg, uint32_t mask, uint32_t value)
{
    for (uint32_t i = 0; i < CLOCK_WAIT_LIMIT && (*reg & mask) != value; ++i) {
    }
}

static void clocks_to_168mhz(void)
{
    RCC_APB1ENR |= RCC_APB1ENR_PWREN;
    PWR_CR |= PWR_CR_VOS;
    FLASH_ACR = FLASH_ACR_5WS_CACHES; /* before the clock rises */
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_PRESCALERS) | RCC_CFGR_PPRE1_DIV4 | RCC_CFGR_PPRE2_DIV2;
    RCC_PLLCFGR = (RCC_PLLCFGR & ~RCC_PLLCFGR_FIELDS) | RCC_PLLCFGR_VALUE;
    RCC_CR |= RCC_CR_PLLON;
    wait_for(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY);
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL;
    wait_for(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL);
}

static void usart1_pins(void)
{
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN;
    RCC_APB2ENR |= RCC_APB2ENR_USART1EN;
    /* STM32F4 errata: a peripheral ignores accesses for two bus cycles after its clock is enabled;
     * reading the enable register back covers that. */
    (void)RCC_APB2ENR;
    GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 18)) | (0xAu << 18);  /* PA9, PA10: alternate function */
    GPIOA_AFRH = (GPIOA_AFRH & ~(0xFFu << 4)) | (0x77u << 4);     /* AF7 = USART1 */
}

void tm_board_init(void)
{
    clocks_to_168mhz();
    usart1_pins();
    tm_uart_stm32_init(&console);
    tm_runtime_init();
}

TM_BOARD_CONSOLE(stm32, console)
