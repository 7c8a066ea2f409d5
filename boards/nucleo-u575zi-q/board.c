/*
 * nucleo-u575zi-q: board support for the STM32U575ZI (RM0456), TrustZone disabled (Non-secure addresses).
 * Out of reset the core runs from MSIS at 4 MHz with the regulator in range 4. tm_board_init() raises it
 * to 160 MHz through PLL1, fed from HSI16 (no crystal frequency assumed):
 *   HSI16 16 MHz / PLL1M 1 = 16 MHz (input range 8-16 MHz) -> x PLL1N 20 = 320 MHz VCO -> / PLL1R 2 = 160 MHz
 *   AHB, APB1, APB2, APB3 /1 = 160 MHz; USART1 kernel clock = PCLK2 = 160 MHz.
 * RM0456's order for 160 MHz: range 1 (VOS, wait VOSRDY); the EPOD booster (needed above 55 MHz) with its
 * clock, PLL1's source / PLL1MBOOST, within 4-16 MHz, selected first (BOOSTEN, wait BOOSTRDY); 4 flash wait
 * states; PLL1 on and locked; SYSCLK = PLL1 through HCLK = SYSCLK / 2 for at least 1 us, as ST's reference
 * code does above 80 MHz. Then the 8 KiB instruction cache (ICACHE) is enabled.
 * Console: USART1 on PA9 (TX) / PA10 (RX), alternate function 7, wired to the ST-LINK virtual COM port.
 */
#include <stdint.h>

#include "tm_board.h"
#include "tm_mmio.h"
#include "tm_runtime.h"
#include "tm_uart.h"

#define RCC_BASE 0x46020C00u
#define RCC_CR TM_MMIO(RCC_BASE + 0x00u)
#define RCC_CFGR1 TM_MMIO(RCC_BASE + 0x1Cu)
#define RCC_CFGR2 TM_MMIO(RCC_BASE + 0x20u)
#define RCC_PLL1CFGR TM_MMIO(RCC_BASE + 0x28u)
#define RCC_PLL1DIVR TM_MMIO(RCC_BASE + 0x34u)
#define RCC_AHB2ENR1 TM_MMIO(RCC_BASE + 0x8Cu)
#define RCC_AHB3ENR TM_MMIO(RCC_BASE + 0x94u)
#define RCC_APB2ENR TM_MMIO(RCC_BASE + 0xA4u)
#define RCC_CCIPR1 TM_MMIO(RCC_BASE + 0xE0u)
#define PWR_VOSR TM_MMIO(0x4602080Cu)
#define FLASH_ACR TM_MMIO(0x40022000u)
#define ICACHE_CR TM_MMIO(0x40030400u)
#define GPIOA_MODER TM_MMIO(0x42020000u)
#define GPIOA_AFRH TM_MMIO(0x42020024u)

#define RCC_CR_HSION (1u << 8)
#define RCC_CR_HSIRDY (1u << 10)
#define RCC_CR_PLL1ON (1u << 24)
#define RCC_CR_PLL1RDY (1u << 25)
#define RCC_CFGR1_SW_MASK 0x3u
#define RCC_CFGR1_SW_PLL1 0x3u
#define RCC_CFGR1_SWS_MASK (0x3u << 2)
#define RCC_CFGR1_SWS_PLL1 (0x3u << 2)
#define RCC_CFGR2_HPRE_MASK 0xFu
#define RCC_CFGR2_HPRE_DIV2 0x8u
#define PLL_M 1u
#define PLL_N 20u
#define PLL_R 2u
/* PLL1SRC = HSI16 (2), PLL1RGE = 8-16 MHz (3), PLL1M field = M - 1, PLL1MBOOST = 0 (/1: 16 MHz), PLL1REN. */
#define RCC_PLL1CFGR_VALUE ((1u << 18) | (0u << 12) | ((PLL_M - 1u) << 8) | (3u << 2) | 2u)
#define RCC_PLL1DIVR_VALUE (((PLL_R - 1u) << 24) | (1u << 16) | (1u << 9) | (PLL_N - 1u)) /* P, Q /2: unused */
#define RCC_AHB2ENR1_GPIOAEN (1u << 0)
#define RCC_AHB3ENR_PWREN (1u << 2)
#define RCC_APB2ENR_USART1EN (1u << 14)
#define RCC_CCIPR1_USART1SEL_MASK 0x3u /* 00: PCLK2 */
#define PWR_VOSR_BOOSTRDY (1u << 14)
#define PWR_VOSR_VOSRDY (1u << 15)
#define PWR_VOSR_RANGE1 (0x3u << 16)
#define PWR_VOSR_BOOSTEN (1u << 18)
#define FLASH_ACR_LATENCY_MASK 0xFu
#define FLASH_ACR_4WS 4u /* range 1: 4 wait states up to 160 MHz */
#define FLASH_ACR_PRFTEN (1u << 8)
#define ICACHE_CR_EN (1u << 0)
#define HSI_HZ 16000000u

_Static_assert(HSI_HZ / PLL_M * PLL_N / PLL_R == TM_CORE_CLOCK_HZ, "board.toml clock_hz: PLL1 gives 160 MHz");
_Static_assert(TM_UART_CLOCK_HZ == TM_CORE_CLOCK_HZ, "board.toml [uart] clock_hz: USART1 runs on PCLK2 = SYSCLK");
_Static_assert(HSI_HZ / PLL_M * PLL_N >= 128000000u && HSI_HZ / PLL_M * PLL_N <= 544000000u, "PLL1 VCO range");

static const tm_uart console = {.base = TM_UART_BASE, .clock_hz = TM_UART_CLOCK_HZ, .baud = 115200u};

static void delay_cycles(uint32_t n)
{
    for (volatile uint32_t i = 0; i < n; ++i) {
    }
}

static void clocks_to_160mhz(void)
{
    RCC_AHB3ENR |= RCC_AHB3ENR_PWREN;
    (void)RCC_AHB3ENR;
    RCC_CR |= RCC_CR_HSION;
    tm_mmio_wait(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY);
    RCC_PLL1CFGR = RCC_PLL1CFGR_VALUE; /* PLL1's source is the booster's clock: before BOOSTEN */
    RCC_PLL1DIVR = RCC_PLL1DIVR_VALUE;

    PWR_VOSR |= PWR_VOSR_RANGE1;
    tm_mmio_wait(&PWR_VOSR, PWR_VOSR_VOSRDY, PWR_VOSR_VOSRDY);
    PWR_VOSR |= PWR_VOSR_BOOSTEN;
    tm_mmio_wait(&PWR_VOSR, PWR_VOSR_BOOSTRDY, PWR_VOSR_BOOSTRDY);
    FLASH_ACR = (FLASH_ACR & ~FLASH_ACR_LATENCY_MASK) | FLASH_ACR_4WS | FLASH_ACR_PRFTEN;
    tm_mmio_wait(&FLASH_ACR, FLASH_ACR_LATENCY_MASK, FLASH_ACR_4WS); /* before the clock rises */

    RCC_CR |= RCC_CR_PLL1ON;
    tm_mmio_wait(&RCC_CR, RCC_CR_PLL1RDY, RCC_CR_PLL1RDY);
    RCC_CFGR2 = (RCC_CFGR2 & ~RCC_CFGR2_HPRE_MASK) | RCC_CFGR2_HPRE_DIV2;
    RCC_CFGR1 = (RCC_CFGR1 & ~RCC_CFGR1_SW_MASK) | RCC_CFGR1_SW_PLL1;
    tm_mmio_wait(&RCC_CFGR1, RCC_CFGR1_SWS_MASK, RCC_CFGR1_SWS_PLL1);
    delay_cycles(100); /* >= 1 us at 80 MHz HCLK before HCLK doubles */
    RCC_CFGR2 &= ~RCC_CFGR2_HPRE_MASK;

    ICACHE_CR |= ICACHE_CR_EN;
}

static void usart1_pins(void)
{
    RCC_AHB2ENR1 |= RCC_AHB2ENR1_GPIOAEN;
    RCC_APB2ENR |= RCC_APB2ENR_USART1EN;
    RCC_CCIPR1 &= ~RCC_CCIPR1_USART1SEL_MASK;
    (void)RCC_APB2ENR; /* the enable takes effect before the first access */
    GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 18)) | (0xAu << 18); /* PA9, PA10: alternate function */
    GPIOA_AFRH = (GPIOA_AFRH & ~(0xFFu << 4)) | (0x77u << 4);   /* AF7 = USART1 */
}

void tm_board_init(void)
{
    clocks_to_160mhz();
    usart1_pins();
    tm_uart_stm32v2_init(&console);
    tm_runtime_init();
}

TM_BOARD_CONSOLE(stm32v2, console)
