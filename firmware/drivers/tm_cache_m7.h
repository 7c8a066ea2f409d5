/*
 * tm_cache_m7.h - turn on the Cortex-M7's L1 instruction and data caches (Armv7-M ARM B2.2.7 and the
 * Cortex-M7 TRM ch. 4: cache maintenance by set/way, then CCR.IC / CCR.DC). Both caches come out of
 * reset disabled and their contents invalid-but-undefined: each is invalidated before it is enabled,
 * with DSB/ISB so that no access sees a half-configured cache. Write-back data caching of SRAM is safe
 * here: nothing but the core (no DMA) touches the memory the firmware uses.
 */
#ifndef TM_CACHE_M7_H
#define TM_CACHE_M7_H

#include <stdint.h>

#define TM_SCB_CCR (*(volatile uint32_t *)0xE000ED14u)
#define TM_SCB_CCSIDR (*(volatile uint32_t *)0xE000ED80u)
#define TM_SCB_CSSELR (*(volatile uint32_t *)0xE000ED84u)
#define TM_SCB_ICIALLU (*(volatile uint32_t *)0xE000EF50u)
#define TM_SCB_DCISW (*(volatile uint32_t *)0xE000EF60u)
#define TM_SCB_CCR_DC (1u << 16)
#define TM_SCB_CCR_IC (1u << 17)

static inline void tm_cache_m7_enable(void)
{
    __asm volatile("dsb\n\tisb" ::: "memory");
    TM_SCB_ICIALLU = 0;
    __asm volatile("dsb\n\tisb" ::: "memory");
    TM_SCB_CCR |= TM_SCB_CCR_IC;
    __asm volatile("dsb\n\tisb" ::: "memory");

    TM_SCB_CSSELR = 0; /* level 1, data cache */
    __asm volatile("dsb" ::: "memory");
    const uint32_t ccsidr = TM_SCB_CCSIDR;
    const uint32_t sets = ((ccsidr >> 13) & 0x7FFFu) + 1u;
    const uint32_t ways = ((ccsidr >> 3) & 0x3FFu) + 1u;
    const uint32_t line_shift = (ccsidr & 0x7u) + 4u;           /* log2(bytes per line) */
    const uint32_t way_shift = ways > 1u ? (uint32_t)__builtin_clz(ways - 1u) : 0u; /* way in the top bits */
    for (uint32_t set = 0; set < sets; ++set) {
        for (uint32_t way = 0; way < ways; ++way) {
            TM_SCB_DCISW = (way << way_shift) | (set << line_shift);
        }
    }
    __asm volatile("dsb" ::: "memory");
    TM_SCB_CCR |= TM_SCB_CCR_DC;
    __asm volatile("dsb\n\tisb" ::: "memory");
}

#endif /* TM_CACHE_M7_H */
