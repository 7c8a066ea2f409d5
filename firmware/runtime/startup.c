/*
 * startup.c - vector table and reset handler shared by every board.
 *
 * Reset_Handler runs on the stack the vector table names, straight out of reset: enable the FPU (and
 * MVE) before any compiled code may touch an FP/vector register, point MSPLIM at the stack bottom on
 * Armv8-M (an overflow then faults instead of corrupting .data), copy .data, zero .bss, run
 * constructors, call main and end through tm_board_exit(main's return value).
 */
#include <stdint.h>
#include <string.h>

#include "tm_board.h"
#include "tm_runtime.h"
#include "tm_core.h"

#ifndef TM_NUM_IRQS
#define TM_NUM_IRQS 32 /* external interrupt slots; boards set theirs (TM_BOARD_NUM_IRQS) */
#endif

typedef void (*tm_vector)(void);

int main(void);
void Reset_Handler(void) __attribute__((noreturn));
void tm_fault_entry(void); /* fault.c: reports the exception on the UART and exits with code 3 */

/* Every exception but reset and SysTick reports itself through tm_fault_entry (a branch: the entry
 * must see the exception's own lr and stack) unless the application defines a handler of that name. */
__attribute__((naked)) void Default_Handler(void)
{
    __asm volatile("b tm_fault_entry");
}

#define TM_DEFAULT(name) void name(void) __attribute__((weak, alias("Default_Handler")))
TM_DEFAULT(NMI_Handler);
TM_DEFAULT(HardFault_Handler);
TM_DEFAULT(MemManage_Handler);
TM_DEFAULT(BusFault_Handler);
TM_DEFAULT(UsageFault_Handler);
TM_DEFAULT(SecureFault_Handler);
TM_DEFAULT(SVC_Handler);
TM_DEFAULT(DebugMon_Handler);
TM_DEFAULT(PendSV_Handler);
TM_DEFAULT(SysTick_Handler);

extern uint32_t __tm_data_start[], __tm_data_end[], __tm_data_load[];
extern uint32_t __tm_bss_start[], __tm_bss_end[];
extern tm_vector __tm_init_array_start[], __tm_init_array_end[];

__attribute__((section(".vectors"), used)) const tm_vector tm_vectors[16 + TM_NUM_IRQS] = {
    [0] = (tm_vector)__tm_stack_top,
    [1] = Reset_Handler,
    [2] = NMI_Handler,
    [3] = HardFault_Handler,
    [4] = MemManage_Handler,
    [5] = BusFault_Handler,
    [6] = UsageFault_Handler,
#if TM_ARMV8M_MAIN
    [7] = SecureFault_Handler,
#endif
    [11] = SVC_Handler,
    [12] = DebugMon_Handler,
    [14] = PendSV_Handler,
    [15] = SysTick_Handler,
    [16 ... 16 + TM_NUM_IRQS - 1] = Default_Handler,
};

void Reset_Handler(void)
{
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    SCB_CPACR |= SCB_CPACR_CP10_CP11_FULL;
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
#if TM_ARMV8M_MAIN
    __asm volatile("msr msplim, %0" : : "r"(__tm_stack_bottom));
#endif
    SCB_VTOR = (uint32_t)tm_vectors;
    /* Report MemManage, BusFault and UsageFault as themselves rather than as an escalated HardFault. */
    SCB_SHCSR |= SCB_SHCSR_MEMFAULTENA | SCB_SHCSR_BUSFAULTENA | SCB_SHCSR_USGFAULTENA
#if TM_ARMV8M_MAIN
                 | SCB_SHCSR_SECUREFAULTENA
#endif
        ;
    __asm volatile("dsb\n\tisb" ::: "memory");

    memcpy(__tm_data_start, __tm_data_load, (size_t)((char *)__tm_data_end - (char *)__tm_data_start));
    memset(__tm_bss_start, 0, (size_t)((char *)__tm_bss_end - (char *)__tm_bss_start));
    for (tm_vector *ctor = __tm_init_array_start; ctor < __tm_init_array_end; ++ctor) {
        (*ctor)();
    }
    tm_board_exit(main());
}
