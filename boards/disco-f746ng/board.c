/*
 * disco-f746ng: board support for the STM32F746NG (RM0385). Out of reset the core runs from the 16 MHz
 * HSI oscillator; tm_board_init() turns on the Cortex-M7 L1 caches and raises the clock to 216 MHz through
 * the main PLL, fed from HSI (the board's 25 MHz crystal is not needed):
 *   HSI 16 MHz / PLLM 8 = 2 MHz -> x PLLN 216 = 432 MHz VCO -> / PLLP 2 = 216 MHz SYSCLK (/ PLLQ 9 = 48 MHz)
 *   AHB /1 = 216 MHz, APB1 /4 = 54 MHz, APB2 /2 = 108 MHz (USART1's clock), flash 7 wait states.
 * Above 180 MHz the regulator needs over-drive; RM0385's order: voltage scale 1 (with the PLL off), PLL on,
 * over-drive on (ODEN, ODRDY), over-drive switch (ODSWEN, ODSWRDY), flash wait states and bus prescalers,
 * PLL locked, then SYSCLK = PLL.
 * Console: USART1 on PA9 (TX) / PB7 (RX), alternate function 7, wired to the ST-LINK virtual COM port.
 */
#include <stdint.h>

#include "tm_board.h"
#include "tm_cache_m7.h"
#include "tm_mmio.h"
#include "tm_runtime.h"
#include "tm_uart.h"

#define RCC_BASE 0x40023800u
#define RCC_CR TM_MMIO(RCC_BASE + 0x00u)
#define RCC_PLLCFGR TM_MMIO(RCC_BASE + 0x04u)
#define RCC_CFGR TM_MMIO(RCC_BASE + 0x08u)
#define RCC_AHB1ENR TM_MMIO(RCC_BASE + 0x30u)
#define RCC_APB1ENR TM_MMIO(RCC_BASE + 0x40u)
#define RCC_APB2ENR TM_MMIO(RCC_BASE + 0x44u)
#define RCC_DCKCFGR2 TM_MMIO(RCC_BASE + 0x90u)
#define PWR_CR1 TM_MMIO(0x40007000u)
#define PWR_CSR1 TM_MMIO(0x40007004u)
#define FLASH_ACR TM_MMIO(0x40023C00u)
#define GPIOA_MODER TM_MMIO(0x40020000u)
#define GPIOA_AFRH TM_MMIO(0x40020024u)
#define GPIOB_MODER TM_MMIO(0x40020400u)
#define GPIOB_AFRL TM_MMIO(0x40020420u)

#define RCC_CR_HSION (1u << 0)
#define RCC_CR_HSIRDY (1u << 1)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define PLL_M 8u
#define PLL_N 216u
#define PLL_P 2u
#define PLL_Q 9u
#define RCC_PLLCFGR_FIELDS 0x0F437FFFu /* PLLQ, PLLSRC, PLLP, PLLN, PLLM; the rest is reserved */
/* PLLSRC = HSI (bit 22 clear), PLLP field 0 = /2 */
#define RCC_PLLCFGR_VALUE ((PLL_Q << 24) | (0u << 22) | (((PLL_P / 2u) - 1u) << 16) | (PLL_N << 6) | PLL_M)
#define RCC_CFGR_SW_MASK 0x3u
#define RCC_CFGR_SW_PLL 0x2u
#define RCC_CFGR_SWS_MASK (0x3u << 2)
#define RCC_CFGR_SWS_PLL (0x2u << 2)
#define RCC_CFGR_PRESCALERS 0x0000FCF0u  /* PPRE2, PPRE1, HPRE */
#define RCC_CFGR_PPRE1_DIV4 (0x5u << 10)
#define RCC_CFGR_PPRE2_DIV2 (0x4u << 13)
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_AHB1ENR_GPIOBEN (1u << 1)
#define RCC_APB1ENR_PWREN (1u << 28)
#define RCC_APB2ENR_USART1EN (1u << 4)
#define RCC_DCKCFGR2_USART1SEL_MASK 0x3u /* 00: PCLK2 */
#define PWR_CR1_VOS_SCALE1 (0x3u << 14)
#define PWR_CR1_ODEN (1u << 16)
#define PWR_CR1_ODSWEN (1u << 17)
#define PWR_CSR1_ODRDY (1u << 16)
#define PWR_CSR1_ODSWRDY (1u << 17)
#define FLASH_ACR_LATENCY_MASK 0xFu
#define FLASH_ACR_7WS 7u /* 210-216 MHz at 2.7-3.6 V */
#define FLASH_ACR_ART_PREFETCH ((1u << 9) | (1u << 8)) /* ARTEN, PRFTEN (serve the ITCM path) */
#define HSI_HZ 16000000u

_Static_assert(HSI_HZ / PLL_M * PLL_N / PLL_P == TM_CORE_CLOCK_HZ, "board.toml clock_hz: the PLL gives 216 MHz");
_Static_assert(TM_UART_CLOCK_HZ == TM_CORE_CLOCK_HZ / 2u, "board.toml [uart] clock_hz: USART1 is on APB2, SYSCLK / 2");
_Static_assert(HSI_HZ / PLL_M * PLL_N <= 432000000u && HSI_HZ / PLL_M * PLL_N / PLL_Q == 48000000u, "PLL VCO, 48 MHz");

static const tm_uart console = {.base = TM_UART_BASE, .clock_hz = TM_UART_CLOCK_HZ, .baud = 115200u};

static void clocks_to_216mhz(void)
{
    RCC_APB1ENR |= RCC_APB1ENR_PWREN;
    (void)RCC_APB1ENR;
    RCC_CR |= RCC_CR_HSION;
    tm_mmio_wait(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY);
    PWR_CR1 |= PWR_CR1_VOS_SCALE1; /* VOS changes only while the PLL is off */
    RCC_PLLCFGR = (RCC_PLLCFGR & ~RCC_PLLCFGR_FIELDS) | RCC_PLLCFGR_VALUE;
    RCC_CR |= RCC_CR_PLLON;
    PWR_CR1 |= PWR_CR1_ODEN;
    tm_mmio_wait(&PWR_CSR1, PWR_CSR1_ODRDY, PWR_CSR1_ODRDY);
    PWR_CR1 |= PWR_CR1_ODSWEN;
    tm_mmio_wait(&PWR_CSR1, PWR_CSR1_ODSWRDY, PWR_CSR1_ODSWRDY);
    FLASH_ACR = (FLASH_ACR & ~FLASH_ACR_LATENCY_MASK) | FLASH_ACR_7WS | FLASH_ACR_ART_PREFETCH;
    tm_mmio_wait(&FLASH_ACR, FLASH_ACR_LATENCY_MASK, FLASH_ACR_7WS); /* before the clock rises */
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_PRESCALERS) | RCC_CFGR_PPRE1_DIV4 | RCC_CFGR_PPRE2_DIV2;
    tm_mmio_wait(&RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY);
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL;
    tm_mmio_wait(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL);
}

static void usart1_pins(void)
{
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN | RCC_AHB1ENR_GPIOBEN;
    RCC_APB2ENR |= RCC_APB2ENR_USART1EN;
    RCC_DCKCFGR2 &= ~RCC_DCKCFGR2_USART1SEL_MASK;
    (void)RCC_APB2ENR; /* the enable takes effect before the first access */
    GPIOA_MODER = (GPIOA_MODER & ~(0x3u << 18)) | (0x2u << 18); /* PA9: alternate function */
    GPIOA_AFRH = (GPIOA_AFRH & ~(0xFu << 4)) | (0x7u << 4);     /* PA9: AF7 = USART1_TX */
    GPIOB_MODER = (GPIOB_MODER & ~(0x3u << 14)) | (0x2u << 14); /* PB7: alternate function */
    GPIOB_AFRL = (GPIOB_AFRL & ~(0xFu << 28)) | (0x7u << 28);   /* PB7: AF7 = USART1_RX */
}

void tm_board_init(void)
{
    tm_cache_m7_enable();
    clocks_to_216mhz();
    usart1_pins();
    tm_uart_stm32v2_init(&console);
    tm_runtime_init();
}

TM_BOARD_CONSOLE(stm32v2, console)
