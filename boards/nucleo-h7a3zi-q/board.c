/*
 * nucleo-h7a3zi-q: board support for the STM32H7A3ZI (RM0455). Out of reset the core runs from the 64 MHz
 * HSI in voltage scale 3. tm_board_init() turns on the Cortex-M7 L1 caches and raises the clock to 280 MHz
 * through PLL1, fed from HSI (no dependence on the ST-LINK's 8 MHz clock output):
 *   HSI 64 MHz / DIVM1 8 = 8 MHz (input range 8-16 MHz) -> x DIVN1 35 = 280 MHz VCO (wide range)
 *   -> / DIVP1 1 = 280 MHz SYSCLK = CPU = AXI/AHB (HPRE /1); APB1-4 /2 = 140 MHz (USART3's clock).
 * Order (RM0455 power and clock chapters): the supply configuration (PWR_CR3, written once after power-up;
 * the "-Q" Nucleo is wired for the direct SMPS supply), wait ACTVOSRDY; voltage scale 0 (PWR_SRDCR.VOS,
 * wait VOSRDY), needed above 225 MHz; flash wait states; bus prescalers; PLL1 on and locked; SYSCLK = PLL1.
 * Console: USART3 on PD8 (TX) / PD9 (RX), alternate function 7, wired to the ST-LINK virtual COM port.
 */
#include <stdint.h>

#include "tm_board.h"
#include "tm_cache_m7.h"
#include "tm_mmio.h"
#include "tm_runtime.h"
#include "tm_uart.h"

#define RCC_BASE 0x58024400u
#define RCC_CR TM_MMIO(RCC_BASE + 0x000u)
#define RCC_CFGR TM_MMIO(RCC_BASE + 0x010u)
#define RCC_CDCFGR1 TM_MMIO(RCC_BASE + 0x018u)
#define RCC_CDCFGR2 TM_MMIO(RCC_BASE + 0x01Cu)
#define RCC_SRDCFGR TM_MMIO(RCC_BASE + 0x020u)
#define RCC_PLLCKSELR TM_MMIO(RCC_BASE + 0x028u)
#define RCC_PLLCFGR TM_MMIO(RCC_BASE + 0x02Cu)
#define RCC_PLL1DIVR TM_MMIO(RCC_BASE + 0x030u)
#define RCC_CDCCIP2R TM_MMIO(RCC_BASE + 0x054u)
#define RCC_AHB4ENR TM_MMIO(RCC_BASE + 0x0E0u)
#define RCC_APB1LENR TM_MMIO(RCC_BASE + 0x0E8u)
#define PWR_CSR1 TM_MMIO(0x58024804u)
#define PWR_CR3 TM_MMIO(0x5802480Cu)
#define PWR_SRDCR TM_MMIO(0x58024818u)
#define FLASH_ACR TM_MMIO(0x52002000u)
#define GPIOD_MODER TM_MMIO(0x58020C00u)
#define GPIOD_AFRH TM_MMIO(0x58020C24u)

#define RCC_CR_HSION (1u << 0)
#define RCC_CR_HSIRDY (1u << 2)
#define RCC_CR_HSIDIV_MASK (0x3u << 3) /* 00: 64 MHz */
#define RCC_CR_PLL1ON (1u << 24)
#define RCC_CR_PLL1RDY (1u << 25)
#define RCC_CFGR_SW_MASK 0x7u
#define RCC_CFGR_SW_PLL1 0x3u
#define RCC_CFGR_SWS_MASK (0x7u << 3)
#define RCC_CFGR_SWS_PLL1 (0x3u << 3)
#define RCC_CDCFGR1_VALUE ((0u << 8) | (4u << 4) | 0u)  /* CDCPRE /1, CDPPRE (APB3) /2, HPRE /1 */
#define RCC_CDCFGR2_VALUE ((4u << 8) | (4u << 4))       /* CDPPRE2 (APB2) /2, CDPPRE1 (APB1) /2 */
#define RCC_SRDCFGR_VALUE (4u << 4)                     /* SRDPPRE (APB4) /2 */
#define PLL_M 8u
#define PLL_N 35u
#define PLL_P 1u
#define RCC_PLLCKSELR_VALUE ((PLL_M << 4) | 0u)        /* DIVM1, PLLSRC = HSI */
#define RCC_PLLCFGR_PLL1_MASK 0x000700FFu               /* DIVR1EN, DIVQ1EN, DIVP1EN, PLL1RGE, PLL1VCOSEL, PLL1FRACEN */
#define RCC_PLLCFGR_PLL1_VALUE ((1u << 16) | (3u << 2)) /* DIVP1EN, PLL1RGE = 8-16 MHz, VCOSEL = wide, integer */
#define RCC_PLL1DIVR_VALUE ((1u << 24) | (1u << 16) | ((PLL_P - 1u) << 9) | (PLL_N - 1u)) /* R, Q /2: unused */
#define RCC_CDCCIP2R_USART234578SEL_MASK 0x7u /* 000: PCLK1 */
#define RCC_AHB4ENR_GPIODEN (1u << 3)
#define RCC_APB1LENR_USART3EN (1u << 18)
#define PWR_CR3_SUPPLY_MASK 0x3Fu        /* SMPSLEVEL, SMPSEXTHP, SMPSEN, LDOEN, BYPASS */
#define PWR_CR3_DIRECT_SMPS (1u << 2)    /* SMPSEN only */
#define PWR_CSR1_ACTVOSRDY (1u << 13)
#define PWR_SRDCR_VOS_MASK (0x3u << 14)
#define PWR_SRDCR_VOS0 (0x3u << 14)
#define PWR_SRDCR_VOSRDY (1u << 13)
#define FLASH_ACR_MASK 0x3Fu             /* WRHIGHFREQ, LATENCY */
#define FLASH_ACR_VOS0_280MHZ ((3u << 4) | 6u) /* WRHIGHFREQ 3, 6 wait states */
#define HSI_HZ 64000000u

_Static_assert(HSI_HZ / PLL_M * PLL_N / PLL_P == TM_CORE_CLOCK_HZ, "board.toml clock_hz: PLL1 gives 280 MHz");
_Static_assert(TM_UART_CLOCK_HZ == TM_CORE_CLOCK_HZ / 2u, "board.toml [uart] clock_hz: USART3 is on APB1, HCLK / 2");
_Static_assert(HSI_HZ / PLL_M >= 8000000u && HSI_HZ / PLL_M <= 16000000u, "PLL1 input range 8-16 MHz (PLL1RGE = 3)");

static const tm_uart console = {.base = TM_UART_BASE, .clock_hz = TM_UART_CLOCK_HZ, .baud = 115200u};

static void clocks_to_280mhz(void)
{
    PWR_CR3 = (PWR_CR3 & ~PWR_CR3_SUPPLY_MASK) | PWR_CR3_DIRECT_SMPS;
    tm_mmio_wait(&PWR_CSR1, PWR_CSR1_ACTVOSRDY, PWR_CSR1_ACTVOSRDY);
    PWR_SRDCR = (PWR_SRDCR & ~PWR_SRDCR_VOS_MASK) | PWR_SRDCR_VOS0;
    tm_mmio_wait(&PWR_SRDCR, PWR_SRDCR_VOSRDY, PWR_SRDCR_VOSRDY);
    FLASH_ACR = (FLASH_ACR & ~FLASH_ACR_MASK) | FLASH_ACR_VOS0_280MHZ;
    tm_mmio_wait(&FLASH_ACR, FLASH_ACR_MASK, FLASH_ACR_VOS0_280MHZ); /* before the clock rises */

    RCC_CR = (RCC_CR & ~RCC_CR_HSIDIV_MASK) | RCC_CR_HSION;
    tm_mmio_wait(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY);
    RCC_CDCFGR1 = RCC_CDCFGR1_VALUE;
    RCC_CDCFGR2 = RCC_CDCFGR2_VALUE;
    RCC_SRDCFGR = RCC_SRDCFGR_VALUE;
    RCC_PLLCKSELR = RCC_PLLCKSELR_VALUE; /* only while every PLL is off: they are, out of reset */
    RCC_PLLCFGR = (RCC_PLLCFGR & ~RCC_PLLCFGR_PLL1_MASK) | RCC_PLLCFGR_PLL1_VALUE;
    RCC_PLL1DIVR = RCC_PLL1DIVR_VALUE;
    RCC_CR |= RCC_CR_PLL1ON;
    tm_mmio_wait(&RCC_CR, RCC_CR_PLL1RDY, RCC_CR_PLL1RDY);
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL1;
    tm_mmio_wait(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL1);
}

static void usart3_pins(void)
{
    RCC_AHB4ENR |= RCC_AHB4ENR_GPIODEN;
    RCC_APB1LENR |= RCC_APB1LENR_USART3EN;
    RCC_CDCCIP2R &= ~RCC_CDCCIP2R_USART234578SEL_MASK;
    (void)RCC_APB1LENR; /* the enable takes effect before the first access */
    GPIOD_MODER = (GPIOD_MODER & ~(0xFu << 16)) | (0xAu << 16); /* PD8, PD9: alternate function */
    GPIOD_AFRH = (GPIOD_AFRH & ~0xFFu) | 0x77u;                 /* AF7 = USART3 */
}

void tm_board_init(void)
{
    tm_cache_m7_enable();
    clocks_to_280mhz();
    usart3_pins();
    tm_uart_stm32v2_init(&console);
    tm_runtime_init();
}

TM_BOARD_CONSOLE(stm32v2, console)
