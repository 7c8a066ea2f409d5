/*
 * nucleo-l4r5zi: board support for the STM32L4R5ZI (RM0432, STM32L4+). Out of reset the core runs from
 * MSI at 4 MHz in voltage range 1 "normal" mode (at most 80 MHz). tm_board_init() raises it to 120 MHz
 * through the main PLL fed from HSI16 (no crystal frequency assumed; the Nucleo fits no HSE crystal):
 *   HSI16 16 MHz / PLLM 4 = 4 MHz -> x PLLN 60 = 240 MHz VCO -> / PLLR 2 = 120 MHz SYSCLK
 *   AHB /1 = 120 MHz, APB1 /1, APB2 /1 = 120 MHz; LPUART1 kernel clock = PCLK1 = 120 MHz.
 * Above 80 MHz the regulator must be in range 1 boost mode and the flash needs 5 wait states; RM0432's
 * sequence (PWR_CR5 R1MODE) is: HCLK = SYSCLK / 2, clear R1MODE, set the wait states, switch to the PLL,
 * wait 1 us, then HCLK = SYSCLK.
 * Console: LPUART1 on PG7 (TX) / PG8 (RX), alternate function 8, wired to the ST-LINK virtual COM port.
 * Port G pins 2-15 are powered from VDDIO2, which must be declared valid (PWR_CR2.IOSV) before use.
 */
#include <stdint.h>

#include "tm_board.h"
#include "tm_mmio.h"
#include "tm_runtime.h"
#include "tm_uart.h"

#define RCC_BASE 0x40021000u
#define RCC_CR TM_MMIO(RCC_BASE + 0x00u)
#define RCC_CFGR TM_MMIO(RCC_BASE + 0x08u)
#define RCC_PLLCFGR TM_MMIO(RCC_BASE + 0x0Cu)
#define RCC_AHB2ENR TM_MMIO(RCC_BASE + 0x4Cu)
#define RCC_APB1ENR1 TM_MMIO(RCC_BASE + 0x58u)
#define RCC_APB1ENR2 TM_MMIO(RCC_BASE + 0x5Cu)
#define RCC_CCIPR TM_MMIO(RCC_BASE + 0x88u)
#define PWR_CR2 TM_MMIO(0x40007004u)
#define PWR_CR5 TM_MMIO(0x40007080u)
#define FLASH_ACR TM_MMIO(0x40022000u)
#define GPIOG_MODER TM_MMIO(0x48001800u)
#define GPIOG_AFRL TM_MMIO(0x48001820u)
#define GPIOG_AFRH TM_MMIO(0x48001824u)

#define RCC_CR_HSION (1u << 8)
#define RCC_CR_HSIRDY (1u << 10)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_CFGR_SW_MASK 0x3u
#define RCC_CFGR_SW_PLL 0x3u
#define RCC_CFGR_SWS_MASK (0x3u << 2)
#define RCC_CFGR_SWS_PLL (0x3u << 2)
#define RCC_CFGR_HPRE_MASK (0xFu << 4)
#define RCC_CFGR_HPRE_DIV2 (0x8u << 4)
#define RCC_CFGR_PPRE_MASK (0x3Fu << 8) /* PPRE1, PPRE2: 0 = /1 */
/* PLLSRC = HSI16 (2), PLLM = 4 (field 3), PLLN = 60, PLLREN, PLLR = 2 (field 0); P and Q off. */
#define PLL_M 4u
#define PLL_N 60u
#define PLL_R 2u
#define RCC_PLLCFGR_VALUE ((0u << 25) | (1u << 24) | (PLL_N << 8) | ((PLL_M - 1u) << 4) | 2u)
#define RCC_AHB2ENR_GPIOGEN (1u << 6)
#define RCC_APB1ENR1_PWREN (1u << 28)
#define RCC_APB1ENR2_LPUART1EN (1u << 0)
#define RCC_CCIPR_LPUART1SEL_MASK (0x3u << 10) /* 00: PCLK1 */
#define PWR_CR2_IOSV (1u << 9)
#define PWR_CR5_R1MODE (1u << 8) /* 1: range 1 normal, 0: range 1 boost */
#define FLASH_ACR_LATENCY_MASK 0xFu
#define FLASH_ACR_5WS 5u /* range 1 boost: 5 wait states up to 120 MHz */
#define FLASH_ACR_CACHES_PREFETCH ((1u << 10) | (1u << 9) | (1u << 8)) /* DCEN, ICEN, PRFTEN */
#define HSI_HZ 16000000u

_Static_assert(HSI_HZ / PLL_M * PLL_N / PLL_R == TM_CORE_CLOCK_HZ, "board.toml clock_hz: the PLL gives 120 MHz");
_Static_assert(TM_UART_CLOCK_HZ == TM_CORE_CLOCK_HZ, "board.toml [uart] clock_hz: LPUART1 runs on PCLK1 = SYSCLK");
_Static_assert(HSI_HZ / PLL_M >= 4000000u && HSI_HZ / PLL_M * PLL_N <= 344000000u, "PLL input/VCO range");

static const tm_uart console = {.base = TM_UART_BASE, .clock_hz = TM_UART_CLOCK_HZ, .baud = 115200u};

static void delay_cycles(uint32_t n)
{
    for (volatile uint32_t i = 0; i < n; ++i) {
    }
}

static void clocks_to_120mhz(void)
{
    RCC_APB1ENR1 |= RCC_APB1ENR1_PWREN;
    (void)RCC_APB1ENR1;
    RCC_CR |= RCC_CR_HSION;
    tm_mmio_wait(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY);
    RCC_PLLCFGR = RCC_PLLCFGR_VALUE; /* only while the PLL is off: it is, out of reset */
    RCC_CR |= RCC_CR_PLLON;
    tm_mmio_wait(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY);

    RCC_CFGR = (RCC_CFGR & ~(RCC_CFGR_HPRE_MASK | RCC_CFGR_PPRE_MASK)) | RCC_CFGR_HPRE_DIV2;
    PWR_CR5 &= ~PWR_CR5_R1MODE; /* range 1 boost, before the clock rises above 80 MHz */
    FLASH_ACR = (FLASH_ACR & ~FLASH_ACR_LATENCY_MASK) | FLASH_ACR_5WS | FLASH_ACR_CACHES_PREFETCH;
    tm_mmio_wait(&FLASH_ACR, FLASH_ACR_LATENCY_MASK, FLASH_ACR_5WS); /* the new latency is in effect */
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL;
    tm_mmio_wait(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL);
    delay_cycles(100); /* >= 1 us at 60 MHz HCLK before HCLK doubles */
    RCC_CFGR &= ~RCC_CFGR_HPRE_MASK;
}

static void lpuart1_pins(void)
{
    PWR_CR2 |= PWR_CR2_IOSV; /* PG2-PG15 are on VDDIO2 */
    RCC_AHB2ENR |= RCC_AHB2ENR_GPIOGEN;
    RCC_APB1ENR2 |= RCC_APB1ENR2_LPUART1EN;
    RCC_CCIPR &= ~RCC_CCIPR_LPUART1SEL_MASK;
    (void)RCC_APB1ENR2; /* the enable takes effect before the first access */
    GPIOG_MODER = (GPIOG_MODER & ~(0xFu << 14)) | (0xAu << 14); /* PG7, PG8: alternate function */
    GPIOG_AFRL = (GPIOG_AFRL & ~(0xFu << 28)) | (0x8u << 28);   /* PG7: AF8 = LPUART1_TX */
    GPIOG_AFRH = (GPIOG_AFRH & ~(0xFu << 0)) | (0x8u << 0);     /* PG8: AF8 = LPUART1_RX */
}

void tm_board_init(void)
{
    clocks_to_120mhz();
    lpuart1_pins();
    tm_uart_stm32v2_lpuart_init(&console);
    tm_runtime_init();
}

TM_BOARD_CONSOLE(stm32v2, console)
