/*
 * tm_core.h - private to firmware/runtime: the few System Control Space registers it touches, its
 * linker symbols and its internal entry points.
 * Addresses and bit positions from the Armv7-M and Armv8-M Architecture Reference Manuals; the same on
 * every core we support (M3, M4, M7, M33, M55). Under TrustZone the runtime runs Secure, so these
 * addresses reach the Secure banks.
 */
#ifndef TM_CORE_H
#define TM_CORE_H

#include <stdint.h>

#define TM_REG(addr) (*(volatile uint32_t *)(addr))

/* SysTick (B3.3 / B11) */
#define SYST_CSR TM_REG(0xE000E010u)
#define SYST_RVR TM_REG(0xE000E014u)
#define SYST_CVR TM_REG(0xE000E018u)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2) /* 1: processor clock */
#define SYST_RELOAD_MAX 0x00FFFFFFu

/* System Control Block */
#define SCB_ICSR TM_REG(0xE000ED04u)
#define SCB_VTOR TM_REG(0xE000ED08u)
#define SCB_AIRCR TM_REG(0xE000ED0Cu)
#define SCB_SHCSR TM_REG(0xE000ED24u)
#define SCB_CFSR TM_REG(0xE000ED28u)
#define SCB_HFSR TM_REG(0xE000ED2Cu)
#define SCB_CPACR TM_REG(0xE000ED88u)
#define SCB_ICSR_PENDSTSET (1u << 26)
#define SCB_AIRCR_VECTKEY (0x05FAu << 16) /* writes without this key are ignored */
#define SCB_AIRCR_PRIGROUP_MASK (7u << 8)
#define SCB_AIRCR_SYSRESETREQ (1u << 2)
#define SCB_SHCSR_MEMFAULTENA (1u << 16)
#define SCB_SHCSR_BUSFAULTENA (1u << 17)
#define SCB_SHCSR_USGFAULTENA (1u << 18)
#define SCB_SHCSR_SECUREFAULTENA (1u << 19) /* Armv8-M Mainline with the Security Extension */
#define SCB_CPACR_CP10_CP11_FULL (0xFu << 20) /* FPU, and MVE on Armv8.1-M */
#define SCB_CFSR_MSTKERR (1u << 4)     /* MemManage fault while stacking the exception frame */
#define SCB_CFSR_STKERR (1u << 12)     /* BusFault while stacking the exception frame */
#define SCB_CFSR_STKOF (1u << 20)      /* Armv8-M: stack limit (MSPLIM) violated */
#define SCB_HFSR_FORCED (1u << 30)     /* a configurable fault (or, under QEMU, a BKPT) escalated */
#define SCB_HFSR_DEBUGEVT (1u << 31)   /* a debug event (BKPT) escalated: no debugger attached */

/* Debug: DEMCR gates the DWT; DWT CYCCNT is the cycle counter (B3.4, C1.8) */
#define DEMCR TM_REG(0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL TM_REG(0xE0001000u)
#define DWT_CYCCNT TM_REG(0xE0001004u)
#define DWT_LAR TM_REG(0xE0001FB0u) /* CoreSight lock: Cortex-M7 needs it unlocked, RAZ/WI elsewhere */
#define DWT_CTRL_CYCCNTENA (1u << 0)
#define DWT_CTRL_NOCYCCNT (1u << 25)
#define DWT_LAR_UNLOCK 0xC5ACCE55u

/* Cores with a DWT cycle counter: Armv7-M and Armv8-M Mainline (not v6-M, not v8-M Baseline). */
#if defined(__ARM_ARCH_6M__) || defined(__ARM_ARCH_8M_BASE__)
#define TM_HAS_CYCCNT 0
#else
#define TM_HAS_CYCCNT 1
#endif

/* Armv8-M Mainline: MSPLIM and SecureFault exist. */
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
#define TM_ARMV8M_MAIN 1
#else
#define TM_ARMV8M_MAIN 0
#endif

/* Linker-script symbols (sections.ld). */
extern uint32_t __tm_stack_bottom[];
extern uint32_t __tm_stack_top[];

void tm_systick_start(void); /* systick.c */
void tm_dwt_start(void);     /* dwt.c */

#endif /* TM_CORE_H */
