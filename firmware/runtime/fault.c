/*
 * fault.c - one report line for any fault or unexpected exception, then exit code 3:
 *
 *   TM FAULT <kind> cfsr=0x........ hfsr=0x........ pc=0x........ lr=0x........ sp=0x........
 *
 * kind is the exception's name (HardFault, MemManage, BusFault, UsageFault, SecureFault, NMI, SVCall,
 * DebugMonitor, PendSV, SysTick) or IRQ<n>. pc and lr are the faulting context's, read from the
 * stacked exception frame; sp is that context's stack pointer before the frame was pushed. When the
 * frame itself could not be pushed (stack overflow), pc and lr read 0. A BKPT (for instance a
 * semihosting call, which the firmware never makes and the emulator never answers) escalates to
 * HardFault and is reported like any fault.
 *
 * The entry switches to a small stack of its own first: the fault may be a stack overflow, and the
 * frame must not be overwritten while it is being reported.
 */
#include <stdint.h>

#include "tm_board.h"
#include "tm_runtime.h"
#include "tm_core.h"

#define TM_FAULT_STACK_BYTES 512
#define TM_STR(x) TM_STR_(x)
#define TM_STR_(x) #x

__attribute__((used, aligned(8))) uint32_t tm_fault_stack[TM_FAULT_STACK_BYTES / 4];

void tm_fault_report(const uint32_t *frame, uint32_t exc_return) __attribute__((noreturn, used));

__attribute__((naked)) void tm_fault_entry(void)
{
    /* EXC_RETURN bit 2 says which stack holds the frame. */
    __asm volatile(
        "tst    lr, #4\n\t"
        "ite    eq\n\t"
        "mrseq  r0, msp\n\t"
        "mrsne  r0, psp\n\t"
        "mov    r1, lr\n\t"
        "movw   r2, #:lower16:tm_fault_stack + " TM_STR(TM_FAULT_STACK_BYTES) "\n\t"
        "movt   r2, #:upper16:tm_fault_stack + " TM_STR(TM_FAULT_STACK_BYTES) "\n\t"
        "mov    sp, r2\n\t"
        "b      tm_fault_report\n\t");
}

static const char *exception_name(uint32_t number)
{
    static const char *const names[16] = {
        "Thread", "Reset", "NMI", "HardFault", "MemManage", "BusFault", "UsageFault", "SecureFault",
        "Reserved", "Reserved", "Reserved", "SVCall", "DebugMonitor", "Reserved", "PendSV", "SysTick",
    };
    return number < 16 ? names[number] : "IRQ";
}

static void print_hex32(const char *key, uint32_t value)
{
    const uint8_t bytes[4] = {(uint8_t)(value >> 24), (uint8_t)(value >> 16), (uint8_t)(value >> 8),
                              (uint8_t)value};
    tm_print(key);
    tm_print("0x");
    tm_print_hex_bytes(bytes, 4);
}

void tm_fault_report(const uint32_t *frame, uint32_t exc_return)
{
    uint32_t ipsr;
    __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
    const uint32_t number = ipsr & 0x1FFu;
    const uint32_t cfsr = SCB_CFSR;
    const uint32_t hfsr = SCB_HFSR;
    const int frame_valid = (cfsr & (SCB_CFSR_MSTKERR | SCB_CFSR_STKERR | SCB_CFSR_STKOF)) == 0;

    uint32_t pc = 0, lr = 0;
    /* Basic frame r0-r3, r12, lr, pc, xPSR; EXC_RETURN bit 4 clear: FP state (S0-S15, FPSCR, pad) too;
     * xPSR bit 9: one more word was inserted to align the frame to 8 bytes. */
    uint32_t sp = (uint32_t)frame + ((exc_return & 0x10u) ? 0x20u : 0x68u);
    if (frame_valid) {
        lr = frame[5];
        pc = frame[6];
        sp += (frame[7] & (1u << 9)) ? 4u : 0u;
    }

    tm_print("TM FAULT ");
    tm_print(exception_name(number));
    if (number >= 16) {
        tm_print_i32((int32_t)(number - 16));
    }
    print_hex32(" cfsr=", cfsr);
    print_hex32(" hfsr=", hfsr);
    print_hex32(" pc=", pc);
    print_hex32(" lr=", lr);
    print_hex32(" sp=", sp);
    tm_print("\n");
    tm_board_exit(3);
}
