/*
 * tm_simd.h - private to the kernels: the Armv7E-M / Armv8-M DSP (SIMD32) instructions the dsp kernels
 * use, as inline functions. On a core with the DSP extension each is one instruction (ACLE or inline
 * assembly); elsewhere (the host, for `tinyml compile --kernels dsp --check`) a C function with exactly
 * the instruction's result, so the same kernel source is checked bit-exact on the host and in QEMU.
 *
 * Packed operands: "s16x2" is two int16 lanes in a uint32_t, lane 0 in bits 0-15; "s8x4" four int8 lanes,
 * lane 0 in bits 0-7 (little-endian memory order).
 */
#ifndef TM_SIMD_H
#define TM_SIMD_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define TM_HAVE_DSP 1
#else
#define TM_HAVE_DSP 0
#endif

/* Unaligned-safe loads and stores (one LDR/STR on Cortex-M3 and later with -O2). */
static inline uint32_t tm_load_u32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline void tm_store_u32(void *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static inline uint32_t tm_load_u16(const void *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

#if TM_HAVE_DSP

/* acc + lo(a)*lo(b) + hi(a)*hi(b) (SMLAD). */
static inline int32_t tm_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    return __smlad(a, b, acc);
}

/* acc + lo(a)*hi(b) + hi(a)*lo(b) (SMLADX). */
static inline int32_t tm_smladx(uint32_t a, uint32_t b, int32_t acc)
{
    return __smladx(a, b, acc);
}

/* lo(a)*lo(b) + hi(a)*hi(b) (SMUAD). */
static inline int32_t tm_smuad(uint32_t a, uint32_t b)
{
    return __smuad(a, b);
}

/* Sign-extend bytes 0 and 2 to two int16 lanes (SXTB16). */
static inline uint32_t tm_sxtb16(uint32_t x)
{
    return __sxtb16(x);
}

/* Sign-extend bytes 1 and 3 to two int16 lanes (SXTB16 with ROR #8: GCC 12 does not fold the rotate). */
static inline uint32_t tm_sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* a + (bytes 0 and 2 of x, sign-extended) per int16 lane (SXTAB16). */
static inline uint32_t tm_sxtab16(uint32_t a, uint32_t x)
{
    return __sxtab16(a, x);
}

/* a + (bytes 1 and 3 of x, sign-extended) per int16 lane (SXTAB16 with ROR #8). */
static inline uint32_t tm_sxtab16_ror8(uint32_t a, uint32_t x)
{
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}

/* Lane-wise int16 add, wrapping (SADD16). */
static inline uint32_t tm_sadd16(uint32_t a, uint32_t b)
{
    return __sadd16(a, b);
}

/* Lane-wise int16 add, saturating (QADD16). */
static inline uint32_t tm_qadd16(uint32_t a, uint32_t b)
{
    return __qadd16(a, b);
}

/* Signed saturation to `bits` (1-32) (SSAT). */
#define tm_ssat(x, bits) __ssat((x), (bits))

/* High word of the rounded product: (int32)(((int64)a * b + 0x80000000) >> 32) (SMMULR). */
static inline int32_t tm_smmulr(int32_t a, int32_t b)
{
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* acc + high word of the rounded product: (int32)((((int64)acc << 32) + (int64)a * b + 2^31) >> 32) (SMMLAR). */
static inline int32_t tm_smmlar(int32_t a, int32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}

/* acc + lo(a) * hi(b) (SMLABT). */
static inline int32_t tm_smlabt(uint32_t a, uint32_t b, int32_t acc)
{
    return __smlabt((int32_t)a, (int32_t)b, acc);
}

/* acc + hi(a) * lo(b) (SMLATB). */
static inline int32_t tm_smlatb(uint32_t a, uint32_t b, int32_t acc)
{
    return __smlatb((int32_t)a, (int32_t)b, acc);
}

/* Bits 0-15 of a, bits 0-15 of b in 16-31 (PKHBT, LSL #16: GCC 12 makes UXTH + ORR of the C expression). */
static inline uint32_t tm_pack_lo16(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* Bits 16-31 of b in 0-15, bits 16-31 of a (PKHTB, ASR #16). */
static inline uint32_t tm_pack_hi16(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

#else /* C equivalents, bit-exact with the instructions */

static inline int32_t tm_lo16(uint32_t x)
{
    return (int16_t)(x & 0xFFFFu);
}

static inline int32_t tm_hi16(uint32_t x)
{
    return (int16_t)(x >> 16);
}

static inline uint32_t tm_pack16(int32_t lo, int32_t hi)
{
    return ((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16);
}

static inline int32_t tm_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(tm_lo16(a) * tm_lo16(b)) + (uint32_t)(tm_hi16(a) * tm_hi16(b)));
}

static inline int32_t tm_smladx(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(tm_lo16(a) * tm_hi16(b)) + (uint32_t)(tm_hi16(a) * tm_lo16(b)));
}

static inline int32_t tm_smuad(uint32_t a, uint32_t b)
{
    return tm_smlad(a, b, 0);
}

static inline uint32_t tm_sxtb16(uint32_t x)
{
    return tm_pack16((int8_t)(x & 0xFFu), (int8_t)((x >> 16) & 0xFFu));
}

static inline uint32_t tm_sxtb16_ror8(uint32_t x)
{
    return tm_pack16((int8_t)((x >> 8) & 0xFFu), (int8_t)(x >> 24));
}

static inline uint32_t tm_sxtab16(uint32_t a, uint32_t x)
{
    uint32_t b = tm_sxtb16(x);
    return tm_pack16(tm_lo16(a) + tm_lo16(b), tm_hi16(a) + tm_hi16(b));
}

static inline uint32_t tm_sxtab16_ror8(uint32_t a, uint32_t x)
{
    uint32_t b = tm_sxtb16_ror8(x);
    return tm_pack16(tm_lo16(a) + tm_lo16(b), tm_hi16(a) + tm_hi16(b));
}

static inline uint32_t tm_sadd16(uint32_t a, uint32_t b)
{
    return tm_pack16(tm_lo16(a) + tm_lo16(b), tm_hi16(a) + tm_hi16(b));
}

static inline int32_t tm_sat16(int32_t x)
{
    return x < -32768 ? -32768 : (x > 32767 ? 32767 : x);
}

static inline uint32_t tm_qadd16(uint32_t a, uint32_t b)
{
    return tm_pack16(tm_sat16(tm_lo16(a) + tm_lo16(b)), tm_sat16(tm_hi16(a) + tm_hi16(b)));
}

static inline int32_t tm_ssat_fn(int32_t x, int bits)
{
    int32_t hi = (int32_t)(((int64_t)1 << (bits - 1)) - 1), lo = -hi - 1;
    return x < lo ? lo : (x > hi ? hi : x);
}

#define tm_ssat(x, bits) tm_ssat_fn((x), (bits))

static inline int32_t tm_smmulr(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * b + 0x80000000LL) >> 32);
}

static inline int32_t tm_smmlar(int32_t a, int32_t b, int32_t acc)
{
    const int64_t sum = (int64_t)((uint64_t)(uint32_t)acc << 32) + (int64_t)a * b + 0x80000000LL;
    return (int32_t)(uint32_t)((uint64_t)sum >> 32);
}

static inline int32_t tm_smlabt(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(tm_lo16(a) * tm_hi16(b)));
}

static inline int32_t tm_smlatb(uint32_t a, uint32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(tm_hi16(a) * tm_lo16(b)));
}

static inline uint32_t tm_pack_lo16(uint32_t a, uint32_t b)
{
    return (a & 0xFFFFu) | (b << 16);
}

static inline uint32_t tm_pack_hi16(uint32_t a, uint32_t b)
{
    return (a & 0xFFFF0000u) | (b >> 16);
}

#endif /* TM_HAVE_DSP */

/* Bits 0-15 of a, bits 16-31 of (b << shift), shift 0-31 (for shift 16 use tm_pack_lo16: one PKHBT). */
static inline uint32_t tm_pkhbt(uint32_t a, uint32_t b, int shift)
{
    return (a & 0xFFFFu) | ((b << shift) & 0xFFFF0000u);
}

/* Bits 16-31 of a, bits 0-15 of (b >> shift) arithmetic, shift 1-31 (for shift 16 use tm_pack_hi16). */
static inline uint32_t tm_pkhtb(uint32_t a, uint32_t b, int shift)
{
    return (a & 0xFFFF0000u) | ((uint32_t)((int32_t)b >> shift) & 0xFFFFu);
}

#endif /* TM_SIMD_H */
