/*
 * stack.c - stack high-water mark by painting. The stack lies at the bottom of RAM
 * ([__tm_stack_bottom, __tm_stack_top), sections.ld) and grows down towards __tm_stack_bottom.
 */
#include <stdint.h>

#include "tm_board.h"
#include "tm_core.h"

#define TM_STACK_PATTERN 0xAA55AA55
#define TM_STR(x) TM_STR_(x)
#define TM_STR_(x) #x

/* Everything below the current stack pointer is free: paint it, from the bottom up. In assembly:
 * compiled C may save registers on the stack after it has read sp (shrink-wrapping), into the very
 * area it then paints. */
__attribute__((naked)) void tm_stack_paint(void)
{
    __asm volatile(
        "movw   r0, #:lower16:__tm_stack_bottom\n\t"
        "movt   r0, #:upper16:__tm_stack_bottom\n\t"
        "movw   r1, #:lower16:" TM_STR(TM_STACK_PATTERN) "\n\t"
        "movt   r1, #:upper16:" TM_STR(TM_STACK_PATTERN) "\n\t"
        "mov    r2, sp\n"
        "1:\n\t"
        "cmp    r0, r2\n\t"
        "bhs    2f\n\t"
        "str    r1, [r0], #4\n\t"
        "b      1b\n"
        "2:\n\t"
        "bx     lr\n\t");
}

/* The deepest word ever written is the lowest one that no longer holds the pattern. An unpainted
 * stack reports its full size. */
uint32_t tm_stack_used(void)
{
    const volatile uint32_t *word = __tm_stack_bottom;
    while (word < __tm_stack_top && *word == (uint32_t)TM_STACK_PATTERN) {
        ++word;
    }
    return (uint32_t)((uintptr_t)__tm_stack_top - (uintptr_t)word);
}

uint32_t tm_stack_size(void)
{
    return (uint32_t)((uintptr_t)__tm_stack_top - (uintptr_t)__tm_stack_bottom);
}
