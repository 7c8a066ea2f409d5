/*
 * semihosting.c - tm_board_exit(): semihosting SYS_EXIT_EXTENDED, or a halt.
 *
 * A semihosting call is `bkpt 0xab` with the operation in r0 and its argument in r1. With a debugger
 * or an emulator listening it returns (here: never, the program ends); with none, the BKPT escalates
 * to HardFault. Whether anyone listens cannot be read at run time: CoreDebug DHCSR.C_DEBUGEN tells
 * about a halting debugger on silicon, but QEMU's -semihosting reads it as 0 too. So it is a build
 * choice, TM_SEMIHOSTING (CMake option, ON for emulator builds); builds for a board on its own set it
 * OFF and halt instead. fault.c also recognises a semihosting BKPT that escalated and halts quietly.
 */
#include <stdint.h>

#include "tm_board.h"
#include "tm_runtime.h"

#ifndef TM_SEMIHOSTING
#define TM_SEMIHOSTING 1
#endif

#define SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

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
    tm_board_flush();
#if TM_SEMIHOSTING
    /* SYS_EXIT_EXTENDED takes a pointer to {reason, exit code}; QEMU exits with the code. */
    const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    register uint32_t op __asm("r0") = SYS_EXIT_EXTENDED;
    register const uint32_t *arg __asm("r1") = block;
    __asm volatile("bkpt 0xab" : "+r"(op) : "r"(arg) : "memory");
#else
    (void)code;
#endif
    tm_halt();
}
