/*
 * CONV_2D (int8, groups == 1) for Cortex-M55 with MVE, bit-exact with LiteRT's
 * reference_integer_ops::ConvPerChannel. Layouts and the compile-time data: tm_conv2d_s8.h (mve).
 */
#include "tm_support.h"

#include "tm_conv2d_s8.h"

/* Rows of the GEMM are padded to whole 16-byte vectors in the packed filter. */
static int32_t k16_of(const tm_dims *filter_dims)
{
    const int32_t k = filter_dims->h * filter_dims->w * filter_dims->c;
    return (k + 15) & ~15;
}

/* The scratch sizes stay outside the MVE guard so the host can check them against the compiler's. */
int32_t tm_conv2d_s8_mve_1x1_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                             const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return filter_dims->c > 32 ? 2 * k16_of(filter_dims) : 0; /* K > 32: the pair of rows, copied */
}

int32_t tm_conv2d_s8_mve_im2col_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                                const tm_dims *output_dims)
{
    (void)input_dims;
    (void)output_dims;
    return 2 * k16_of(filter_dims);
}

#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>

/* What the GEMM of one pair of rows reads; the offsets are fixed by the assembly below. The output pointers
 * advance as it goes, so the caller sets them before every call. */
typedef struct {
    const int8_t *row0;          /* 0: the two rows, k bytes each (row1 == row0 for a single row) */
    const int8_t *row1;          /* 4 */
    const int32_t *stream;       /* 8: weights and constants, block by block (tm_conv2d_s8.h) */
    int32_t unused;              /* 12 */
    int8_t *out0;                /* 16: c_out outputs each (out1 == out0 for a single row: same values) */
    int8_t *out1;                /* 20 */
    int32_t first_bytes;         /* 24: K - 16 * full_steps, in 1..16 */
    int32_t full_steps;          /* 28 */
    int32_t c_out;               /* 32 */
    int32_t output_offset;       /* 36 */
    int32_t act_min, act_max;    /* 40, 44 */
} gemm_args;

/* The assembly's fixed offsets, checked at compile time (a negative array size fails the build). */
typedef char gemm_args_layout_check[(offsetof(gemm_args, stream) == 8 && offsetof(gemm_args, out0) == 16 &&
                                     offsetof(gemm_args, first_bytes) == 24 &&
                                     offsetof(gemm_args, output_offset) == 36 &&
                                     offsetof(gemm_args, act_max) == 44) ? 1 : -1];

/* Two rows by every output channel, four channels per block: out0[c] and out1[c] for all c.
 *
 * Written in assembly because VMLADAVA accumulates in even registers only: the eight sums of a block (two
 * rows x four channels: six vector loads per eight VMLADAVA, 16 MACs each) take all eight (r0-r12, lr), and
 * GCC, which also needs a loop counter there, spills and copies in the inner loop instead. Registers: r1, r3
 * row pointers, r5 stream (runs through the blocks' weights and constants in load order), r7 step counter,
 * r9 args, r11 channels
 * left. The row's first chunk (first_bytes) starts the sums with VMLADAV, so no register is zeroed; whole
 * 16-byte chunks follow.
 *
 * Requantization, four channels per vector, TFLite's double rounding exactly: VQRDMULH is
 * SaturatingRoundingDoublingHighMul; RoundingDivideByPOT rounds half away from zero while VRSHL rounds half
 * up, so a negative x first loses 1 when the right shift e is > 0 (x & -e has the sign bit set exactly
 * then): floor((x - 1 + h) / 2^e) is the away-from-zero result, and VQADD keeps INT32_MIN (which is never
 * a tie). The stores of the last block are predicated to the channels that exist. args arrives in r0
 * (AAPCS), the only way a naked function may read it.
 *
 * Used for K > 32 (GEMM_HELD below takes K <= 32). Four variants, chosen per layer by the compiler (the quant's
 * gemm, so a model links only those it calls), drop work the layer does not need (per block of eight outputs):
 * FIRST_WHOLE when K is a multiple of 16 (no predicated first chunk), and the "plain" requantization when every
 * channel has left shift 0 and right shift >= 1 (most layers): no VSHL, and the fix-up needs no mask. */
#define GEMM_FIRST_PREDICATED \
    "ldr r7, [r9, #24]\n\t"   \
    "vctp.8 r7\n\t"           \
    "vpstt\n\t"               \
    "vldrbt.8 q6, [r1]\n\t"   \
    "vldrbt.8 q7, [r3]\n\t"   \
    "add r1, r7\n\t"          \
    "add r3, r7\n\t"
#define GEMM_FIRST_WHOLE        \
    "vldrb.8 q6, [r1], #16\n\t" \
    "vldrb.8 q7, [r3], #16\n\t"
/* The block's constants follow its weights in the stream (bias' in q0 already); the fix-up masks end in
 * q0, q2. */
#define GEMM_SCALE_ANY            \
    "vldrw.u32 q1, [r5], #16\n\t" \
    "vldrw.u32 q2, [r5], #16\n\t" \
    "vldrw.u32 q3, [r5], #16\n\t" \
    "vshl.s32 q6, q6, q2\n\t"     \
    "vshl.s32 q7, q7, q2\n\t"     \
    "vqrdmulh.s32 q6, q6, q1\n\t" \
    "vqrdmulh.s32 q7, q7, q1\n\t" \
    "vand q0, q6, q3\n\t"         \
    "vand q2, q7, q3\n\t"         \
    "vshr.s32 q0, q0, #31\n\t"    \
    "vshr.s32 q2, q2, #31\n\t"
#define GEMM_SCALE_PLAIN          \
    "vldrw.u32 q1, [r5], #32\n\t" \
    "vldrw.u32 q3, [r5], #16\n\t" \
    "vqrdmulh.s32 q6, q6, q1\n\t" \
    "vqrdmulh.s32 q7, q7, q1\n\t" \
    "vshr.s32 q0, q6, #31\n\t"    \
    "vshr.s32 q2, q7, #31\n\t"

#define GEMM_STEP                   \
    "vldrb.8 q6, [r1], #16\n\t"     \
    "vldrb.8 q7, [r3], #16\n\t"     \
    "vldrb.8 q0, [r5], #16\n\t"     \
    "vldrb.8 q1, [r5], #16\n\t"     \
    "vldrb.8 q2, [r5], #16\n\t"     \
    "vldrb.8 q3, [r5], #16\n\t"     \
    "vmladava.s8 r0, q6, q0\n\t"    \
    "vmladava.s8 r2, q6, q1\n\t"    \
    "vmladava.s8 r4, q6, q2\n\t"    \
    "vmladava.s8 r6, q6, q3\n\t"    \
    "vmladava.s8 r8, q7, q0\n\t"    \
    "vmladava.s8 r10, q7, q1\n\t"   \
    "vmladava.s8 r12, q7, q2\n\t"   \
    "vmladava.s8 lr, q7, q3\n\t"

/* The whole 16-byte chunks after the first: two per pass (one loop branch per 32 bytes); an odd count
 * does one first. */
#define GEMM_LOOP                      \
    "ldr r7, [r9, #28]\n\t"            \
    "lsrs r7, r7, #1\n\t"              \
    "bcc 5f\n\t"                       \
    GEMM_STEP                          \
    "5:\n\t"                           \
    "cbz r7, 2f\n"                     \
    "1:\n\t"                           \
    GEMM_STEP                          \
    GEMM_STEP                          \
    "subs r7, #1\n\t"                  \
    "bne 1b\n"

/* Registers beyond the comment above: q6, q7 the rows, q0-q3 a chunk of weights, then the requantization's
 * temporaries; q4, q5 the activation bounds for the whole call. */
#define GEMM_TWO_ROWS(name, FIRST, LOOP, SCALE)                          \
    __attribute__((naked)) static void name(gemm_args *args __attribute__((unused))) \
    {                                                              \
        __asm__ volatile(                                          \
            "push {r4-r11, lr}\n\t"                                \
            "vpush {d8-d15}\n\t"                                   \
            "mov r9, r0\n\t"                                       \
            "ldrd r0, r2, [r9, #40]\n\t"                           \
            "vdup.32 q4, r0\n\t"                                   \
            "vdup.32 q5, r2\n\t"                                   \
            "ldr r11, [r9, #32]\n\t"                               \
            "ldr r5, [r9, #8]\n"                                   \
            "3:\n\t"                                               \
            "ldrd r1, r3, [r9, #0]\n\t"                            \
            FIRST                                                  \
            "vldrb.8 q0, [r5], #16\n\t"                            \
            "vldrb.8 q1, [r5], #16\n\t"                            \
            "vldrb.8 q2, [r5], #16\n\t"                            \
            "vldrb.8 q3, [r5], #16\n\t"                            \
            "vmladav.s8 r0, q6, q0\n\t"                            \
            "vmladav.s8 r2, q6, q1\n\t"                            \
            "vmladav.s8 r4, q6, q2\n\t"                            \
            "vmladav.s8 r6, q6, q3\n\t"                            \
            "vmladav.s8 r8, q7, q0\n\t"                            \
            "vmladav.s8 r10, q7, q1\n\t"                           \
            "vmladav.s8 r12, q7, q2\n\t"                           \
            "vmladav.s8 lr, q7, q3\n\t"                            \
            LOOP                                                   \
            "2:\n\t"                                               \
            "vmov q6[2], q6[0], r0, r4\n\t"                        \
            "vmov q6[3], q6[1], r2, r6\n\t"                        \
            "vmov q7[2], q7[0], r8, r12\n\t"                       \
            "vmov q7[3], q7[1], r10, lr\n\t"                       \
            "vldrw.u32 q0, [r5], #16\n\t" /* bias' */              \
            "vadd.i32 q6, q6, q0\n\t"                              \
            "vadd.i32 q7, q7, q0\n\t"                              \
            SCALE                                                  \
            "vqadd.s32 q6, q6, q0\n\t"                             \
            "vqadd.s32 q7, q7, q2\n\t"                             \
            "vrshl.s32 q6, q6, q3\n\t"                             \
            "vrshl.s32 q7, q7, q3\n\t"                             \
            "ldr r2, [r9, #36]\n\t"                                \
            "vadd.i32 q6, q6, r2\n\t"                              \
            "vadd.i32 q7, q7, r2\n\t"                              \
            "vmax.s32 q6, q6, q4\n\t"                              \
            "vmax.s32 q7, q7, q4\n\t"                              \
            "vmin.s32 q6, q6, q5\n\t"                              \
            "vmin.s32 q7, q7, q5\n\t"                              \
            "ldrd r0, r2, [r9, #16]\n\t"                           \
            "vctp.32 r11\n\t"                                      \
            "vpstt\n\t"                                            \
            "vstrbt.32 q6, [r0], #4\n\t"                           \
            "vstrbt.32 q7, [r2], #4\n\t"                           \
            "strd r0, r2, [r9, #16]\n\t"                           \
            "subs r11, #4\n\t"                                     \
            "bgt 3b\n\t"                                           \
            "vpop {d8-d15}\n\t"                                    \
            "pop {r4-r11, pc}\n\t");                               \
    }

GEMM_TWO_ROWS(gemm_two_rows_any, GEMM_FIRST_PREDICATED, GEMM_LOOP, GEMM_SCALE_ANY)
GEMM_TWO_ROWS(gemm_two_rows_plain, GEMM_FIRST_PREDICATED, GEMM_LOOP, GEMM_SCALE_PLAIN)
GEMM_TWO_ROWS(gemm_two_rows_whole_any, GEMM_FIRST_WHOLE, GEMM_LOOP, GEMM_SCALE_ANY)
GEMM_TWO_ROWS(gemm_two_rows_whole_plain, GEMM_FIRST_WHOLE, GEMM_LOOP, GEMM_SCALE_PLAIN)

typedef void (*gemm_fn)(gemm_args *args);

/* Whether every real channel has left shift 0 and right shift >= 1 (padding channels are all 0): the "plain"
 * requantization. A block of the stream takes k16 words of weights (4 x k16 bytes), then 16 of constants. */
static int stream_plain(const int32_t *stream, int32_t k, int32_t c_out)
{
    const int32_t weight_words = (k + 15) & ~15, block_words = weight_words + 16;
    int plain = 1;
    for (int32_t c = 0; c < c_out; ++c) {
        const int32_t *blk = stream + (c >> 2) * block_words + weight_words + (c & 3);
        plain &= blk[8] == 0 && blk[12] < 0;
    }
    return plain;
}

/* The per-call part of the GEMM arguments. */
static void gemm_args_init(gemm_args *g, const tm_conv2d_params *params, const int32_t *stream, int32_t k,
                           int32_t c_out)
{
    g->stream = stream;
    g->full_steps = (k - 1) >> 4;
    g->first_bytes = k - 16 * g->full_steps;
    g->c_out = c_out;
    g->output_offset = params->output_offset;
    g->act_min = params->activation.min;
    g->act_max = params->activation.max;
}

static inline void gemm_pair(gemm_fn gemm, gemm_args *g, const int8_t *row0, const int8_t *row1, int8_t *out0,
                             int8_t *out1)
{
    g->row0 = row0;
    g->row1 = row1;
    g->out0 = out0;
    g->out1 = out1;
    gemm(g);
}

/* K <= 32: one or two vectors per row, so a pair of rows stays in registers (q6, q7, or q4-q7) across all the
 * channel blocks, and the block loop is one pass over a single stream (tm_conv2d_s8.h: a block's weight
 * vectors in load order, then bias', multiplier, left shift, -right shift). The output offset stays in r9,
 * and with one vector per row the activation bounds in q4, q5, so the requantization loads only its three
 * or four per-block vectors. The pair loop runs here too: `pairs` pairs of rows, each pair `row_step` bytes
 * after the previous (the contiguous pixels of a stride-1 1x1 conv); outputs advance by `out_step`.
 * Registers: r11 args, r1 stream, r3 r5 output pointers, r7 channels left, even registers the sums. */
typedef struct {
    const int8_t *row0;          /* 0 */
    const int8_t *row1;          /* 4 */
    const int32_t *stream;       /* 8 */
    int8_t *out0;                /* 12 */
    int8_t *out1;                /* 16 */
    int32_t first_bytes;         /* 20: the first (predicated) chunk's bytes: K, or K - 16 with two chunks */
    int32_t pairs;               /* 24: >= 1 */
    int32_t c_out;               /* 28 */
    int32_t output_offset;       /* 32 */
    int32_t act_min, act_max;    /* 36, 40 */
    int32_t row_step;            /* 44 */
    int32_t out_step;            /* 48 */
} small_args;

typedef char small_args_layout_check[(offsetof(small_args, out0) == 12 && offsetof(small_args, first_bytes) == 20 &&
                                      offsetof(small_args, output_offset) == 32 &&
                                      offsetof(small_args, act_max) == 40 &&
                                      offsetof(small_args, out_step) == 48) ? 1 : -1];

/* One chunk: rows in q6, q7; activation bounds in q4, q5 for the whole call. */
#define SMALL1_SETUP                 \
    "ldrd r0, r2, [r11, #36]\n\t"    \
    "vdup.32 q4, r0\n\t"             \
    "vdup.32 q5, r2\n\t"
#define SMALL1_ROWS                  \
    "vctp.8 r4\n\t"                  \
    "vpstt\n\t"                      \
    "vldrbt.8 q6, [r0]\n\t"          \
    "vldrbt.8 q7, [r2]\n\t"
#define SMALL1_DOT                   \
    "vldrb.8 q0, [r1], #16\n\t"      \
    "vldrb.8 q1, [r1], #16\n\t"      \
    "vldrb.8 q2, [r1], #16\n\t"      \
    "vldrb.8 q3, [r1], #16\n\t"      \
    "vmladav.s8 r0, q6, q0\n\t"      \
    "vmladav.s8 r2, q6, q1\n\t"      \
    "vmladav.s8 r4, q6, q2\n\t"      \
    "vmladav.s8 r6, q6, q3\n\t"      \
    "vmladav.s8 r8, q7, q0\n\t"      \
    "vmladav.s8 r10, q7, q1\n\t"     \
    "vmladav.s8 r12, q7, q2\n\t"     \
    "vmladav.s8 lr, q7, q3\n\t"
#define SMALL1_CLAMP                 \
    "vmax.s32 q0, q0, q4\n\t"        \
    "vmax.s32 q1, q1, q4\n\t"        \
    "vmin.s32 q0, q0, q5\n\t"        \
    "vmin.s32 q1, q1, q5\n\t"
/* Two chunks: row0 in q4, q5, row1 in q6, q7 (the predicated first chunk, then a whole one); the bounds
 * are set up per block in the temporaries. */
#define SMALL2_ROWS                  \
    "vctp.8 r4\n\t"                  \
    "vpstt\n\t"                      \
    "vldrbt.8 q4, [r0]\n\t"          \
    "vldrbt.8 q6, [r2]\n\t"          \
    "add r0, r4\n\t"                 \
    "add r2, r4\n\t"                 \
    "vldrb.8 q5, [r0]\n\t"           \
    "vldrb.8 q7, [r2]\n\t"
#define SMALL2_DOT                   \
    "vldrb.8 q0, [r1], #16\n\t"      \
    "vldrb.8 q1, [r1], #16\n\t"      \
    "vldrb.8 q2, [r1], #16\n\t"      \
    "vldrb.8 q3, [r1], #16\n\t"      \
    "vmladav.s8 r0, q4, q0\n\t"      \
    "vmladav.s8 r2, q4, q1\n\t"      \
    "vmladav.s8 r4, q4, q2\n\t"      \
    "vmladav.s8 r6, q4, q3\n\t"      \
    "vmladav.s8 r8, q6, q0\n\t"      \
    "vmladav.s8 r10, q6, q1\n\t"     \
    "vmladav.s8 r12, q6, q2\n\t"     \
    "vmladav.s8 lr, q6, q3\n\t"      \
    "vldrb.8 q0, [r1], #16\n\t"      \
    "vldrb.8 q1, [r1], #16\n\t"      \
    "vldrb.8 q2, [r1], #16\n\t"      \
    "vldrb.8 q3, [r1], #16\n\t"      \
    "vmladava.s8 r0, q5, q0\n\t"     \
    "vmladava.s8 r2, q5, q1\n\t"     \
    "vmladava.s8 r4, q5, q2\n\t"     \
    "vmladava.s8 r6, q5, q3\n\t"     \
    "vmladava.s8 r8, q7, q0\n\t"     \
    "vmladava.s8 r10, q7, q1\n\t"    \
    "vmladava.s8 r12, q7, q2\n\t"    \
    "vmladava.s8 lr, q7, q3\n\t"
#define SMALL2_CLAMP                 \
    "ldrd r0, r2, [r11, #36]\n\t"    \
    "vdup.32 q2, r0\n\t"             \
    "vdup.32 q3, r2\n\t"             \
    "vmax.s32 q0, q0, q2\n\t"        \
    "vmax.s32 q1, q1, q2\n\t"        \
    "vmin.s32 q0, q0, q3\n\t"        \
    "vmin.s32 q1, q1, q3\n\t"

/* The stream's constants: bias' and multiplier at [r1] (r1 advanced past them and the left shift); the
 * double-rounding fix-up as in GEMM_TWO_ROWS. */
#define SMALL_SCALE_PLAIN           \
    "vldrw.u32 q3, [r1], #32\n\t"   \
    "vqrdmulh.s32 q0, q0, q3\n\t"   \
    "vqrdmulh.s32 q1, q1, q3\n\t"   \
    "vshr.s32 q2, q0, #31\n\t"      \
    "vshr.s32 q3, q1, #31\n\t"      \
    "vqadd.s32 q0, q0, q2\n\t"      \
    "vqadd.s32 q1, q1, q3\n\t"
#define SMALL_SCALE_ANY             \
    "vldrw.u32 q3, [r1], #16\n\t"   \
    "vldrw.u32 q2, [r1], #16\n\t"   \
    "vshl.s32 q0, q0, q2\n\t"       \
    "vshl.s32 q1, q1, q2\n\t"       \
    "vqrdmulh.s32 q0, q0, q3\n\t"   \
    "vqrdmulh.s32 q1, q1, q3\n\t"   \
    "vldrw.u32 q2, [r1]\n\t"        \
    "vand q3, q0, q2\n\t"           \
    "vshr.s32 q3, q3, #31\n\t"      \
    "vqadd.s32 q0, q0, q3\n\t"      \
    "vand q3, q1, q2\n\t"           \
    "vshr.s32 q3, q3, #31\n\t"      \
    "vqadd.s32 q1, q1, q3\n\t"

#define GEMM_HELD(name, SETUP, ROWS, DOT, SCALE, CLAMP)                               \
    __attribute__((naked)) static void name(small_args *args __attribute__((unused))) \
    {                                                              \
        __asm__ volatile(                                          \
            "push {r4-r11, lr}\n\t"                                \
            "vpush {d8-d15}\n\t"                                   \
            "mov r11, r0\n\t"                                      \
            "ldr r9, [r11, #32]\n\t"                               \
            SETUP                                                  \
            "4:\n\t"                                               \
            "ldrd r0, r2, [r11, #0]\n\t"                           \
            "ldr r6, [r11, #44]\n\t"                               \
            "add r8, r0, r6\n\t"                                   \
            "add r10, r2, r6\n\t"                                  \
            "strd r8, r10, [r11, #0]\n\t"                          \
            "ldr r4, [r11, #20]\n\t"                               \
            ROWS                                                   \
            "ldrd r3, r5, [r11, #12]\n\t"                          \
            "ldr r1, [r11, #8]\n\t"                                \
            "ldr r7, [r11, #28]\n"                                 \
            "3:\n\t"                                               \
            DOT                                                    \
            "vmov q0[2], q0[0], r0, r4\n\t"                        \
            "vmov q0[3], q0[1], r2, r6\n\t"                        \
            "vmov q1[2], q1[0], r8, r12\n\t"                       \
            "vmov q1[3], q1[1], r10, lr\n\t"                       \
            "vldrw.u32 q2, [r1], #16\n\t" /* bias' */              \
            "vadd.i32 q0, q0, q2\n\t"                              \
            "vadd.i32 q1, q1, q2\n\t"                              \
            SCALE                                                  \
            "vldrw.u32 q2, [r1], #16\n\t" /* -right shift */       \
            "vrshl.s32 q0, q0, q2\n\t"                             \
            "vrshl.s32 q1, q1, q2\n\t"                             \
            "vadd.i32 q0, q0, r9\n\t"                              \
            "vadd.i32 q1, q1, r9\n\t"                              \
            CLAMP                                                  \
            "vctp.32 r7\n\t"                                       \
            "vpstt\n\t"                                            \
            "vstrbt.32 q0, [r3], #4\n\t"                           \
            "vstrbt.32 q1, [r5], #4\n\t"                           \
            "subs r7, #4\n\t"                                      \
            "bgt 3b\n\t"                                           \
            "ldrd r3, r5, [r11, #12]\n\t"                          \
            "ldr r0, [r11, #48]\n\t"                               \
            "add r3, r0\n\t"                                       \
            "add r5, r0\n\t"                                       \
            "strd r3, r5, [r11, #12]\n\t"                          \
            "ldr r0, [r11, #24]\n\t"                               \
            "subs r0, #1\n\t"                                      \
            "str r0, [r11, #24]\n\t"                               \
            "bgt 4b\n\t"                                           \
            "vpop {d8-d15}\n\t"                                    \
            "pop {r4-r11, pc}\n\t");                               \
    }

GEMM_HELD(gemm_held1_plain, SMALL1_SETUP, SMALL1_ROWS, SMALL1_DOT, SMALL_SCALE_PLAIN, SMALL1_CLAMP)
GEMM_HELD(gemm_held1_any, SMALL1_SETUP, SMALL1_ROWS, SMALL1_DOT, SMALL_SCALE_ANY, SMALL1_CLAMP)
GEMM_HELD(gemm_held2_plain, "", SMALL2_ROWS, SMALL2_DOT, SMALL_SCALE_PLAIN, SMALL2_CLAMP)
GEMM_HELD(gemm_held2_any, "", SMALL2_ROWS, SMALL2_DOT, SMALL_SCALE_ANY, SMALL2_CLAMP)

typedef void (*small_fn)(small_args *args);

/* A GEMM routine and the layers it takes (tm_conv2d_s8.h). */
struct tm_conv2d_mve_gemm {
    small_fn held; /* K <= 32: the rows held in registers */
    gemm_fn rows;  /* K > 32 */
    int32_t chunks; /* held: 16-byte chunks per row (1: K <= 16, 2: 16 < K <= 32); rows: 0 */
    int32_t whole;  /* rows: K must be a multiple of 16 */
    int32_t plain;  /* every channel must have left shift 0 and a right shift */
};

const tm_conv2d_mve_gemm tm_conv2d_mve_gemm_held1_plain = {.held = gemm_held1_plain, .chunks = 1, .plain = 1};
const tm_conv2d_mve_gemm tm_conv2d_mve_gemm_held1_any = {.held = gemm_held1_any, .chunks = 1, .plain = 0};
const tm_conv2d_mve_gemm tm_conv2d_mve_gemm_held2_plain = {.held = gemm_held2_plain, .chunks = 2, .plain = 1};
const tm_conv2d_mve_gemm tm_conv2d_mve_gemm_held2_any = {.held = gemm_held2_any, .chunks = 2, .plain = 0};
const tm_conv2d_mve_gemm tm_conv2d_mve_gemm_rows_plain = {.rows = gemm_two_rows_plain, .plain = 1};
const tm_conv2d_mve_gemm tm_conv2d_mve_gemm_rows_any = {.rows = gemm_two_rows_any, .plain = 0};
const tm_conv2d_mve_gemm tm_conv2d_mve_gemm_rows_whole_plain = {.rows = gemm_two_rows_whole_plain, .whole = 1,
                                                                .plain = 1};
const tm_conv2d_mve_gemm tm_conv2d_mve_gemm_rows_whole_any = {.rows = gemm_two_rows_whole_any, .whole = 1, .plain = 0};

/* Whether the quant's routine takes a layer of this K and these shifts (once per call). */
static int gemm_fits(const tm_conv2d_mve_gemm *gemm, const int32_t *stream, int32_t k, int32_t c_out)
{
    if (gemm == NULL || (k <= 32 ? gemm->held == NULL || gemm->chunks != (k > 16 ? 2 : 1)
                                 : gemm->rows == NULL || (gemm->whole && k % 16 != 0))) {
        return 0;
    }
    return !gemm->plain || stream_plain(stream, k, c_out);
}

/* Once per call: the checks every variant shares. */
static int conv_args_ok(const tm_conv2d_params *params, const tm_conv2d_mve_quant *quant,
                        const tm_dims *input_dims, const int8_t *input, const tm_dims *filter_dims,
                        const int8_t *filter, const tm_dims *output_dims, const int8_t *output)
{
    if (params == NULL || quant == NULL || quant->blocks == NULL || input == NULL || filter == NULL ||
        output == NULL || !tm_dims_ok(input_dims) || !tm_dims_ok(filter_dims) || !tm_dims_ok(output_dims)) {
        return 0;
    }
    return gemm_fits(quant->gemm, quant->blocks, filter_dims->h * filter_dims->w * filter_dims->c, output_dims->c) &&
           filter_dims->c == input_dims->c && output_dims->c == filter_dims->n && output_dims->n == input_dims->n &&
           tm_window_ok(&params->stride, &params->dilation) && tm_activation_ok(&params->activation) &&
           params->input_offset >= -127 && params->input_offset <= 128;
}

static void small_args_init(small_args *s, const tm_conv2d_params *params, const int32_t *stream, int32_t k,
                            int32_t c_out)
{
    s->stream = stream;
    s->first_bytes = k > 16 ? k - 16 : k;
    s->c_out = c_out;
    s->output_offset = params->output_offset;
    s->act_min = params->activation.min;
    s->act_max = params->activation.max;
}

/* `pairs` pairs of rows (row0 + i * row_step, row1 + i * row_step) to (out0 + i * out_step, out1 + ...). */
static inline void small_run(small_fn fn, small_args *s, const int8_t *row0, const int8_t *row1, int8_t *out0,
                             int8_t *out1, int32_t pairs, int32_t row_step, int32_t out_step)
{
    s->row0 = row0;
    s->row1 = row1;
    s->out0 = out0;
    s->out1 = out1;
    s->pairs = pairs;
    s->row_step = row_step;
    s->out_step = out_step;
    fn(s);
}

/* Copies n >= 0 bytes: whole vectors, then one predicated vector (no lanes when nothing is left, which
 * touches no memory), so short runs cost no loop set-up. */
static inline void copy_bytes(int8_t *dst, const int8_t *src, int32_t n)
{
    for (; n > 16; n -= 16, dst += 16, src += 16) {
        vstrbq_s8(dst, vldrbq_s8(src));
    }
    const mve_pred16_t p = vctp8q((uint32_t)n);
    vstrbq_p_s8(dst, vldrbq_z_s8(src, p), p);
}

/* Walks the input pixels a strided 1x1 conv reads, in output raster order (a batch follows its last row). */
typedef struct {
    const int8_t *row_start, *pixel;
    int32_t x, y;
    int32_t w_out, h_out;
    int32_t pixel_step, row_step, batch_step; /* next column; next row; last row to the next batch */
} pixel_walk;

/* Returns the current pixel's input and moves to the next. */
static inline const int8_t *pixel_walk_next(pixel_walk *pw)
{
    const int8_t *const current = pw->pixel;
    if (++pw->x == pw->w_out) {
        pw->x = 0;
        if (++pw->y == pw->h_out) {
            pw->y = 0;
            pw->row_start += pw->batch_step;
        } else {
            pw->row_start += pw->row_step;
        }
        pw->pixel = pw->row_start;
    } else {
        pw->pixel += pw->pixel_step;
    }
    return current;
}

tm_status tm_conv2d_s8_mve_1x1(const tm_context *ctx, const tm_conv2d_params *params,
                               const tm_conv2d_mve_quant *quant,
                               const tm_dims *input_dims, const int8_t *input,
                               const tm_dims *filter_dims, const int8_t *packed_filter,
                               const tm_dims *output_dims, int8_t *output)
{
    if (!conv_args_ok(params, quant, input_dims, input, filter_dims, packed_filter, output_dims, output) ||
        filter_dims->h != 1 || filter_dims->w != 1 || params->padding.h != 0 || params->padding.w != 0 ||
        (output_dims->h - 1) * params->stride.h >= input_dims->h ||
        (output_dims->w - 1) * params->stride.w >= input_dims->w) {
        return TM_ARG_ERROR;
    }
    const int32_t c_in = input_dims->c, c_out = output_dims->c;
    const int32_t pixels = output_dims->n * output_dims->h * output_dims->w;
    if (c_in <= 32 && params->stride.h == 1 && params->stride.w == 1 && output_dims->h == input_dims->h &&
        output_dims->w == input_dims->w) {
        /* Stride 1: the pixels are contiguous, so one call runs every pair (the small-K stream layout). */
        const int32_t *const stream = quant->blocks;
        small_args s;
        small_args_init(&s, params, stream, c_in, c_out);
        const small_fn fn = quant->gemm->held;
        if (pixels >= 2) {
            small_run(fn, &s, input, input + c_in, output, output + c_out, pixels >> 1, 2 * c_in, 2 * c_out);
        }
        if (pixels & 1) {
            const int8_t *const last = input + (pixels - 1) * c_in;
            int8_t *const out = output + (pixels - 1) * c_out;
            small_run(fn, &s, last, last, out, out, 1, 0, 0);
        }
        return TM_OK;
    }
    const int32_t row_step = params->stride.h * input_dims->w * c_in;
    pixel_walk pw = {
        .row_start = input, .pixel = input, .x = 0, .y = 0, .w_out = output_dims->w, .h_out = output_dims->h,
        .pixel_step = params->stride.w * c_in, .row_step = row_step,
        .batch_step = input_dims->h * input_dims->w * c_in - (output_dims->h - 1) * row_step,
    };
    int8_t *out = output;
    if (c_in <= 32) {
        /* Strided: one call per pair, as the pixel walk goes. */
        const int32_t *const stream = quant->blocks;
        small_args s;
        small_args_init(&s, params, stream, c_in, c_out);
        const small_fn fn = quant->gemm->held;
        for (int32_t p = 0; p + 1 < pixels; p += 2, out += 2 * c_out) {
            const int8_t *const first = pixel_walk_next(&pw);
            small_run(fn, &s, first, pixel_walk_next(&pw), out, out + c_out, 1, 0, 0);
        }
        if (pixels & 1) {
            const int8_t *const last = pixel_walk_next(&pw);
            small_run(fn, &s, last, last, out, out, 1, 0, 0);
        }
        return TM_OK;
    }
    /* K > 32: the GEMM reads the rows again for every block of channels, so where the output shares bytes
     * with the input the pair is copied to the scratch first: a pair's outputs are written only once its
     * input is read, and may lie over it (in place). Apart, the rows are read where they are. */
    const int32_t k16 = k16_of(filter_dims);
    if (ctx == NULL || ctx->buf == NULL || ctx->size < 2 * k16) {
        return TM_ARG_ERROR;
    }
    int8_t *const rows = (int8_t *)ctx->buf;
    gemm_args g;
    gemm_args_init(&g, params, quant->blocks, c_in, c_out);
    const gemm_fn gemm = quant->gemm->rows;
    const uintptr_t in0 = (uintptr_t)input, out0 = (uintptr_t)output;
    const uintptr_t in_bytes = (uintptr_t)input_dims->n * (uintptr_t)input_dims->h * (uintptr_t)input_dims->w *
                               (uintptr_t)c_in;
    if (out0 >= in0 + in_bytes || in0 >= out0 + (uintptr_t)pixels * (uintptr_t)c_out) {
        for (int32_t p = 0; p + 1 < pixels; p += 2, out += 2 * c_out) {
            const int8_t *const first = pixel_walk_next(&pw);
            gemm_pair(gemm, &g, first, pixel_walk_next(&pw), out, out + c_out);
        }
        if (pixels & 1) {
            const int8_t *const last = pixel_walk_next(&pw);
            gemm_pair(gemm, &g, last, last, out, out);
        }
        return TM_OK;
    }
    for (int32_t p = 0; p + 1 < pixels; p += 2, out += 2 * c_out) {
        copy_bytes(rows, pixel_walk_next(&pw), c_in);
        copy_bytes(rows + k16, pixel_walk_next(&pw), c_in);
        gemm_pair(gemm, &g, rows, rows + k16, out, out + c_out);
    }
    if (pixels & 1) {
        copy_bytes(rows, pixel_walk_next(&pw), c_in);
        gemm_pair(gemm, &g, rows, rows, out, out);
    }
    return TM_OK;
}

static inline void fill_bytes(int8_t *dst, int8x16_t value, int32_t n)
{
    for (; n > 16; n -= 16, dst += 16) {
        vstrbq_s8(dst, value);
    }
    vstrbq_p_s8(dst, value, vctp8q((uint32_t)n));
}

/* The geometry the im2col gather needs, fixed per call. */
typedef struct {
    const int8_t *input; /* batch start */
    int32_t h_in, w_in, c_in, kh, kw;
    int32_t dil_h, dil_w;
    int32_t tap_row;     /* kw * c_in: the bytes one filter row takes in a GEMM row */
    int32_t input_row;   /* dil_h * w_in * c_in: from one filter row's input to the next */
    int8x16_t pad;       /* the input zero point: (pad + input_offset) = 0, so the folded bias stays exact */
} gather_geometry;

/* One output pixel's GEMM row: the window at input (y0, x0), in filter order (ky, kx, ic); taps outside the
 * input get the zero point. For the pixels near the border: gather_inside does the others. Input positions
 * are kept as offsets until they are known to lie inside the input. */
static void gather_row(int8_t *dst, const gather_geometry *gg, int32_t y0, int32_t x0)
{
    /* Locals: the int8 stores could alias *gg, which would make GCC reload every field per filter row. */
    const int32_t c_in = gg->c_in, kh = gg->kh, kw = gg->kw, tap_row = gg->tap_row;
    const int32_t h_in = gg->h_in, w_in = gg->w_in, dil_h = gg->dil_h, dil_w = gg->dil_w;
    const int8x16_t pad = gg->pad;
    /* Columns in bounds for every ky: [kx_lo, kx_hi). */
    int32_t kx_lo = 0, kx_hi = kw;
    while (kx_lo < kw && x0 + kx_lo * dil_w < 0) {
        ++kx_lo;
    }
    while (kx_hi > kx_lo && x0 + (kx_hi - 1) * dil_w >= w_in) {
        --kx_hi;
    }
    for (int32_t ky = 0, iy = y0; ky < kh; ++ky, iy += dil_h, dst += tap_row) {
        if (iy < 0 || iy >= h_in || kx_lo == kx_hi) {
            fill_bytes(dst, pad, tap_row);
            continue;
        }
        const int8_t *const src = gg->input + (iy * w_in + x0 + kx_lo * dil_w) * c_in; /* tap kx_lo */
        fill_bytes(dst, pad, kx_lo * c_in);
        if (dil_w == 1) {
            /* Adjacent taps are adjacent in the input: one copy for the row. */
            copy_bytes(dst + kx_lo * c_in, src, (kx_hi - kx_lo) * c_in);
        } else {
            for (int32_t kx = kx_lo; kx < kx_hi; ++kx) {
                copy_bytes(dst + kx * c_in, src + (kx - kx_lo) * dil_w * c_in, c_in);
            }
        }
        fill_bytes(dst + kx_hi * c_in, pad, (kw - kx_hi) * c_in);
    }
}

/* Two pixels' GEMM rows (at rows and rows + k16) from windows wholly inside the input (dilation.w == 1), which
 * start at src0 and src1: one contiguous run of tap_row bytes per filter row each. k16 = 0 and src1 = src0
 * gather one pixel (its bytes are written twice). */
static void gather_inside(int8_t *rows, int32_t k16, const gather_geometry *gg, const int8_t *src0,
                          const int8_t *src1)
{
    const int32_t kh = gg->kh, tap_row = gg->tap_row, input_row = gg->input_row;
    if (tap_row <= 16) {
        const mve_pred16_t p = vctp8q((uint32_t)tap_row);
        for (int32_t ky = 0; ky < kh; ++ky, rows += tap_row, src0 += input_row, src1 += input_row) {
            vstrbq_p_s8(rows, vldrbq_z_s8(src0, p), p);
            vstrbq_p_s8(rows + k16, vldrbq_z_s8(src1, p), p);
        }
        return;
    }
    if (tap_row % 16 == 0) {
        /* Whole vectors (c_in a multiple of 16, as in most layers after the first): one pass over the window,
         * both pixels at once, no predication. */
        const int32_t vectors = kh * (tap_row >> 4), per_row = tap_row >> 4;
        const int32_t skip = input_row - tap_row;
        int32_t left = per_row;
        for (int32_t v = 0; v < vectors; ++v, rows += 16) {
            vstrbq_s8(rows, vldrbq_s8(src0));
            vstrbq_s8(rows + k16, vldrbq_s8(src1));
            src0 += 16;
            src1 += 16;
            if (--left == 0) {
                left = per_row;
                src0 += skip;
                src1 += skip;
            }
        }
        return;
    }
    for (int32_t ky = 0; ky < kh; ++ky, rows += tap_row, src0 += input_row, src1 += input_row) {
        copy_bytes(rows, src0, tap_row);
        copy_bytes(rows + k16, src1, tap_row);
    }
}

tm_status tm_conv2d_s8_mve_im2col(const tm_context *ctx, const tm_conv2d_params *params,
                                  const tm_conv2d_mve_quant *quant,
                                  const tm_dims *input_dims, const int8_t *input,
                                  const tm_dims *filter_dims, const int8_t *packed_filter,
                                  const tm_dims *output_dims, int8_t *output)
{
    if (ctx == NULL || ctx->buf == NULL ||
        ctx->size < tm_conv2d_s8_mve_im2col_get_buffer_size(input_dims, filter_dims, output_dims) ||
        !conv_args_ok(params, quant, input_dims, input, filter_dims, packed_filter, output_dims, output)) {
        return TM_ARG_ERROR;
    }
    const int32_t k = filter_dims->h * filter_dims->w * filter_dims->c;
    const int32_t k16 = k16_of(filter_dims);
    const int32_t c_out = output_dims->c, h_out = output_dims->h, w_out = output_dims->w;
    const int32_t stride_h = params->stride.h, stride_w = params->stride.w;
    const int32_t pad_h = params->padding.h, pad_w = params->padding.w;
    int8_t *const rows = (int8_t *)ctx->buf;
    gemm_args g;
    gemm_args_init(&g, params, quant->blocks, k, c_out);
    /* K <= 32: the small-K stream layout, one call per pair. */
    const int small = k <= 32;
    const gemm_fn gemm = quant->gemm->rows;
    const int32_t *const stream = quant->blocks;
    small_args s;
    small_args_init(&s, params, stream, k, c_out);
    const small_fn sfn = quant->gemm->held;
    gather_geometry gg = {
        .input = input, .h_in = input_dims->h, .w_in = input_dims->w, .c_in = input_dims->c,
        .kh = filter_dims->h, .kw = filter_dims->w, .dil_h = params->dilation.h, .dil_w = params->dilation.w,
        .tap_row = filter_dims->w * input_dims->c, .input_row = params->dilation.h * input_dims->w * input_dims->c,
        .pad = vdupq_n_s8((int8_t)(-params->input_offset)),
    };
    const int32_t per_batch_in = input_dims->h * input_dims->w * input_dims->c;
    const int32_t per_image = h_out * w_out;
    /* Window origins (y0, x0) with 0 <= y0 <= y_last and 0 <= x0 <= x_last lie wholly inside the input;
     * with dilation.w == 1 each filter row is then one contiguous run (gather_inside). */
    const int32_t y_last = gg.h_in - (gg.kh - 1) * gg.dil_h - 1, x_last = gg.w_in - gg.kw;
    const int fast_ok = gg.dil_w == 1 && y_last >= 0 && x_last >= 0;
    int8_t *out = output;
    for (int32_t batch = 0; batch < output_dims->n; ++batch, gg.input += per_batch_in) {
        int32_t y = 0, x = 0;
        for (int32_t p = 0; p < per_image; p += 2) {
            const int32_t ya = y * stride_h - pad_h, xa = x * stride_w - pad_w;
            if (++x == w_out) {
                x = 0;
                ++y;
            }
            if (p + 1 == per_image) {
                gather_row(rows, &gg, ya, xa);
                if (small) {
                    small_run(sfn, &s, rows, rows, out, out, 1, 0, 0);
                } else {
                    gemm_pair(gemm, &g, rows, rows, out, out);
                }
                out += c_out;
                break;
            }
            const int32_t yb = y * stride_h - pad_h, xb = x * stride_w - pad_w;
            if (++x == w_out) {
                x = 0;
                ++y;
            }
            /* Unsigned compares test both bounds of each coordinate at once. */
            const int inside_a = fast_ok && (uint32_t)ya <= (uint32_t)y_last && (uint32_t)xa <= (uint32_t)x_last;
            const int inside_b = fast_ok && (uint32_t)yb <= (uint32_t)y_last && (uint32_t)xb <= (uint32_t)x_last;
            const int8_t *const src_a = inside_a ? gg.input + (ya * gg.w_in + xa) * gg.c_in : NULL;
            const int8_t *const src_b = inside_b ? gg.input + (yb * gg.w_in + xb) * gg.c_in : NULL;
            if (inside_a && inside_b) {
                gather_inside(rows, k16, &gg, src_a, src_b);
            } else {
                if (inside_a) {
                    gather_inside(rows, 0, &gg, src_a, src_a);
                } else {
                    gather_row(rows, &gg, ya, xa);
                }
                if (inside_b) {
                    gather_inside(rows + k16, 0, &gg, src_b, src_b);
                } else {
                    gather_row(rows + k16, &gg, yb, xb);
                }
            }
            if (small) {
                small_run(sfn, &s, rows, rows + k16, out, out + c_out, 1, 0, 0);
            } else {
                gemm_pair(gemm, &g, rows, rows + k16, out, out + c_out);
            }
            out += 2 * c_out;
        }
    }
    return TM_OK;
}

#endif /* __ARM_FEATURE_MVE */
