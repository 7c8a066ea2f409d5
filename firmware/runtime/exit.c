/*
 * exit.c - tm_board_exit(): print "TM EXIT code=<n>", then leave by a system reset request, or halt.
 *
 * The firmware never uses semihosting: a semihosting call (`bkpt 0xab`) would let a program open,
 * write and delete host files and run host commands (SYS_SYSTEM) wherever an emulator or debugger
 * answers it, and the model the firmware was generated from is untrusted. The exit code travels
 * over the UART instead, and the program ends with AIRCR.SYSRESETREQ: QEMU started with -no-reboot
 * exits on it. TM_EXIT_RESET (CMake option, ON for emulator builds) selects that; builds for a board
 * running alone set it OFF and halt after the line (a reset there would run the program again).
 */
#include <stdint.h>

#include "tm_board.h"
#include "tm_core.h"
#include "tm_runtime.h"

#ifndef TM_EXIT_RESET
#define TM_EXIT_RESET 1
#endif

void tm_halt(void)
{
    tm_board_flush();
    __asm volatile("cpsid i" ::: "memory");
    for (;;) {
        __asm volatile("wfi");
    }
}

void tm_board_exit(int32_t code)
{
    tm_print("TM EXIT code=");
    tm_print_i32(code);
    tm_print("\n");
    tm_board_flush();
#if TM_EXIT_RESET
    __asm volatile("dsb" ::: "memory");
    SCB_AIRCR = SCB_AIRCR_VECTKEY | (SCB_AIRCR & SCB_AIRCR_PRIGROUP_MASK) | SCB_AIRCR_SYSRESETREQ;
    __asm volatile("dsb" ::: "memory");
#endif
    tm_halt();
}
