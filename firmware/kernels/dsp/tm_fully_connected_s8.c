/*
 * FULLY_CONNECTED (int8) for cores with the DSP extension (layout and contract: tm_fully_connected_s8.h).
 * SMLAD multiplies two int16 pairs: the input row is widened once into scratch as, per four bytes
 * x0 x1 x2 x3, the pairs (x0, x2) (x1, x3) that SXTB16 and SXTB16 ROR 8 make of a weight word, so each
 * weight word costs half an LDRD, two extends and two SMLADs (the input pairs are loaded once for four rows).
 * The input offset is in the folded bias, so widening needs no add and the padding is plain zeros.
 * Without that scratch (ctx->size below tm_fully_connected_s8_dsp_widened_size) the same loops widen each
 * input word as they load it (two SXTB16 more per four input values, no scratch), except where the output row
 * is long enough to hold the widened row in its last bytes until the outputs reach them (see fully_connected).
 */
#include "tm_nn.h"
#include "tm_simd.h"
#include "tm_support.h"
#include "tm_fully_connected_s8.h"

#define ROWS 4 /* output rows per pass over the input */
/* The dot-product loops stay out of line: inlined, they share registers with the caller's loops and GCC 12
 * spills accumulators inside them. */
#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif
/* GCC 12's scheduling before register allocation hoists the loads of block4 and then spills accumulators
 * (14 live values): without it the loop body is loads, extends and SMLADs only. */
#if defined(__GNUC__) && !defined(__clang__)
#define NO_PRESCHEDULE __attribute__((optimize("no-schedule-insns")))
#else
#define NO_PRESCHEDULE
#endif
/* Hides a value's origin from GCC (see finish_litert). */
#if defined(__GNUC__)
#define OPAQUE(v) __asm__("" : "+r"(v))
#else
#define OPAQUE(v) ((void)0)
#endif
#define STEP 16 /* weights per row per loop iteration: rows are padded to a multiple */
#define GROUP 32 /* outputs accumulated (on the stack) before one requantization pass over them */

typedef struct {
    const int32_t *multiplier, *shift;
    const tm_fully_connected_quant *exact; /* NULL: tflite-micro rounding */
    int32_t high_shift, output_offset, act_min, act_max;
} finish_args;

static inline int32_t padded_depth(int32_t depth)
{
    return (depth + STEP - 1) / STEP * STEP;
}

/* out[i] = the requantized acc[i] of output channel o + i, i < n. Out of line, once per GROUP outputs: the
 * constants stay in registers over the group instead of being reloaded per output. */
static NOINLINE void finish_litert(const finish_args *a, const int32_t *acc, int32_t o, int32_t n, int8_t *out)
{
    const uint32_t *multiplier = (const uint32_t *)a->multiplier + o;
    const int32_t high_shift = a->high_shift, offset = a->output_offset, lo = a->act_min, hi = a->act_max;
    if (lo == -128 && hi == 127) {
        /* int8's range only (no fused activation, or ReLU with zero point -128): |scaled| < 2^30, so the sum
         * cannot wrap and one SSAT is LiteRT's add-then-clamp. tm_fully_connected_requantize_fast written out:
         * the constants it derives from high_shift stay in registers across the group. */
        const uint32_t half = UINT32_C(1) << (high_shift - 1), mask = (UINT32_C(1) << high_shift) - 1u;
        for (int32_t i = 0; i < n; ++i) {
            const int32_t x = acc[i];
            uint32_t magnitude = x < 0 ? 0u - (uint32_t)x : (uint32_t)x;
            /* else GCC widens x >= 0 as a signed value and corrects the product's high word (2 more) */
            OPAQUE(magnitude);
            const uint32_t biased = (uint32_t)(((uint64_t)magnitude * multiplier[i]) >> 32) + half;
            int32_t scaled;
            if (((biased + 1u) & mask) > 1u) {
                const int32_t rounded = (int32_t)(biased >> high_shift);
                scaled = x < 0 ? -rounded : rounded;
            } else {
                const tm_fully_connected_quant *e = a->exact; /* near a rounding boundary (rare) */
                scaled = tm_fully_connected_requantize_litert(x, e->mantissa_hi[o + i], e->mantissa_lo[o + i],
                                                              e->exponent[o + i]);
            }
            out[i] = (int8_t)tm_ssat(scaled + offset, 8);
        }
        return;
    }
    for (int32_t i = 0; i < n; ++i) {
        const int32_t scaled = tm_fully_connected_requantize_fast(acc[i], multiplier[i], high_shift, a->exact, o + i);
        /* LiteRT adds the offset without wrapping; beyond +-512 the clamp decides alone. */
        out[i] = (int8_t)tm_clamp((int32_t)tm_ssat(scaled, 10) + offset, lo, hi);
    }
}

static NOINLINE void finish_tflm(const finish_args *a, const int32_t *acc, int32_t o, int32_t n, int8_t *out)
{
    const int32_t *multiplier = a->multiplier + o, *shift = a->shift + o;
    const int32_t offset = a->output_offset, lo = a->act_min, hi = a->act_max;
    for (int32_t i = 0; i < n; ++i) {
        /* tflite-micro adds the output offset in int32, which wraps. */
        const int32_t scaled = tm_requantize(acc[i], multiplier[i], shift[i]);
        out[i] = (int8_t)tm_clamp(tm_wrapping_add(scaled, offset), lo, hi);
    }
}

static inline void finish(const finish_args *a, const int32_t *acc, int32_t o, int32_t n, int8_t *out)
{
    if (a->exact != NULL) {
        finish_litert(a, acc, o, n, out);
    } else {
        finish_tflm(a, acc, o, n, out);
    }
}

/* One input row as int16 pairs (x0, x2) (x1, x3) per four bytes, zero-padded to kp values. */
static void widen(const int8_t *in, int32_t depth, int32_t kp, uint32_t *pairs)
{
    int32_t k = 0;
    for (; k + 4 <= depth; k += 4) {
        const uint32_t word = tm_load_u32(in + k);
        *pairs++ = tm_sxtb16(word);
        *pairs++ = tm_sxtb16_ror8(word);
    }
    for (; k < kp; k += 4) {
        uint32_t word = 0;
        for (int32_t i = 0; i < 4 && k + i < depth; ++i) {
            word |= (uint32_t)(uint8_t)in[k + i] << (8 * i);
        }
        *pairs++ = tm_sxtb16(word);
        *pairs++ = tm_sxtb16_ror8(word);
    }
}

/* The two SMLADs of one weight word w (four weights of a row) with the input pairs x02, x13. */
#define MAC4(acc, w, x02, x13) ((acc) = tm_smlad(tm_sxtb16_ror8(w), (x13), tm_smlad(tm_sxtb16(w), (x02), (acc))))

/* The four rows' columns 4g .. 4g + 3 of one iteration, given that group's input pairs (block4's locals). */
#define ROWS_GROUP(g, x02, x13)                                                                                 \
    do {                                                                                                        \
        uint32_t w0 = w[4 * (g)], w1 = w[4 * (g) + 1];                                                          \
        MAC4(a0, w0, x02, x13);                                                                                 \
        MAC4(a1, w1, x02, x13);                                                                                 \
        w0 = w[4 * (g) + 2];                                                                                    \
        w1 = w[4 * (g) + 3];                                                                                    \
        MAC4(a2, w0, x02, x13);                                                                                 \
        MAC4(a3, w1, x02, x13);                                                                                 \
    } while (0)

/* ... with the input pairs widened beforehand. */
#define BLOCK_GROUP(g)                                                                                          \
    do {                                                                                                        \
        const uint32_t x02 = x[2 * (g)], x13 = x[2 * (g) + 1];                                                  \
        ROWS_GROUP(g, x02, x13);                                                                                \
    } while (0)

/* acc[r] = bias[r] + row r . x for the four interleaved rows of a block, `halves` halves of an iteration of STEP
 * weights per row (odd: the row's last STEP / 2 columns are padding, skipped): written out (GCC -O2 does not
 * unroll) and counted down, so the loop costs two instructions per 64 MACs. */
static NOINLINE NO_PRESCHEDULE void block4(const uint32_t *w, const uint32_t *x, int32_t halves,
                                           const int32_t *bias, int32_t acc[ROWS])
{
    int32_t a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
    int32_t steps = halves >> 1;
    if (halves & 1) { /* first, the row's last 8 columns (iteration `steps`, groups 0 and 1) */
        BLOCK_GROUP(4 * steps);
        BLOCK_GROUP(4 * steps + 1);
    }
    for (; steps != 0; --steps) {
        BLOCK_GROUP(0);
        BLOCK_GROUP(1);
        BLOCK_GROUP(2);
        BLOCK_GROUP(3);
        x += STEP / 2;
        w += STEP;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* block4 reading the int8 input itself (`steps` full iterations, no padding read): each input word is widened
 * as it is loaded, once for the four rows. */
#define BLOCK_GROUP_S8(g)                                                                                       \
    do {                                                                                                        \
        const uint32_t v = tm_load_u32(in + 4 * (g));                                                           \
        const uint32_t x02 = tm_sxtb16(v), x13 = tm_sxtb16_ror8(v);                                             \
        ROWS_GROUP(g, x02, x13);                                                                                \
    } while (0)

static NOINLINE NO_PRESCHEDULE void block4_s8(const uint32_t *w, const int8_t *in, int32_t steps,
                                              const int32_t *bias, int32_t acc[ROWS])
{
    int32_t a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
    for (; steps != 0; --steps) {
        BLOCK_GROUP_S8(0);
        BLOCK_GROUP_S8(1);
        BLOCK_GROUP_S8(2);
        BLOCK_GROUP_S8(3);
        in += STEP;
        w += STEP;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* acc + row . x for one row of contiguous weights (`halves` as block4's). */
static NOINLINE NO_PRESCHEDULE int32_t row1(const uint32_t *w, const uint32_t *x, int32_t halves, int32_t acc)
{
    int32_t steps = halves >> 1;
    if (halves & 1) { /* first, the row's last 8 columns */
        MAC4(acc, w[4 * steps], x[8 * steps], x[8 * steps + 1]);
        MAC4(acc, w[4 * steps + 1], x[8 * steps + 2], x[8 * steps + 3]);
    }
    for (; steps != 0; --steps) {
        MAC4(acc, w[0], x[0], x[1]);
        MAC4(acc, w[1], x[2], x[3]);
        MAC4(acc, w[2], x[4], x[5]);
        MAC4(acc, w[3], x[6], x[7]);
        x += STEP / 2;
        w += STEP / 4;
    }
    return acc;
}

/* block4_s8 for a word-aligned input: its words are loaded two at a time (LDRD). */
#define BLOCK_GROUP_S8W(g, v)                                                                                   \
    do {                                                                                                        \
        const uint32_t x02 = tm_sxtb16(v), x13 = tm_sxtb16_ror8(v);                                             \
        ROWS_GROUP(g, x02, x13);                                                                                \
    } while (0)

static NOINLINE NO_PRESCHEDULE void block4_s8w(const uint32_t *w, const int8_t *row, int32_t steps,
                                               const int32_t *bias, int32_t acc[ROWS])
{
    const uint32_t *in = (const uint32_t *)(const void *)row;
    int32_t a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
    for (; steps != 0; --steps) {
        uint32_t v0 = in[0], v1 = in[1];
        BLOCK_GROUP_S8W(0, v0);
        BLOCK_GROUP_S8W(1, v1);
        v0 = in[2];
        v1 = in[3];
        BLOCK_GROUP_S8W(2, v0);
        BLOCK_GROUP_S8W(3, v1);
        in += STEP / 4;
        w += STEP;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* row1 reading the int8 input itself, as block4_s8. */
static NOINLINE NO_PRESCHEDULE int32_t row1_s8(const uint32_t *w, const int8_t *in, int32_t steps, int32_t acc)
{
    for (; steps != 0; --steps) {
        for (int32_t g = 0; g < STEP / 4; ++g) {
            const uint32_t v = tm_load_u32(in + 4 * g);
            MAC4(acc, w[g], tm_sxtb16(v), tm_sxtb16_ror8(v));
        }
        in += STEP;
        w += STEP / 4;
    }
    return acc;
}

static int quant_ok(const tm_fully_connected_fast_quant *q, int32_t channels)
{
    if (q == NULL || q->multiplier == NULL || !q->per_channel) {
        return 0;
    }
    const tm_fully_connected_quant *e = q->exact;
    if (e != NULL) {
        return e->mantissa_hi != NULL && e->mantissa_lo != NULL && e->exponent != NULL && e->per_channel &&
               q->high_shift >= 2 && q->high_shift <= 31;
    }
    if (q->shift == NULL) {
        return 0;
    }
    for (int32_t i = 0; i < channels; ++i) {
        if (!tm_shift_ok(q->shift[i])) {
            return 0;
        }
    }
    return 1;
}

static tm_status fully_connected(const tm_context *ctx, const tm_fully_connected_params *params,
                                 const tm_fully_connected_fast_quant *quant, int tflm,
                                 const tm_dims *input_dims, const int8_t *input,
                                 const tm_dims *filter_dims, const int8_t *filter, const int32_t *bias,
                                 const tm_dims *output_dims, int8_t *output)
{
    if (params == NULL || input == NULL || filter == NULL || bias == NULL || output == NULL || ctx == NULL ||
        !tm_dims_ok(input_dims) || !tm_dims_ok(filter_dims) || !tm_dims_ok(output_dims) ||
        !tm_activation_ok(&params->activation) || params->filter_offset != 0 ||
        filter_dims->c != input_dims->c || output_dims->n != input_dims->n || output_dims->c != filter_dims->n ||
        !quant_ok(quant, filter_dims->n) || (quant->exact == NULL) != tflm) {
        return TM_ARG_ERROR;
    }
    const int32_t depth = input_dims->c, kp = padded_depth(depth), out_depth = filter_dims->n;
    if ((ctx->buf != NULL && ((uintptr_t)ctx->buf & 3u) != 0) || ((uintptr_t)filter & 3u) != 0) {
        return TM_ARG_ERROR;
    }
    const finish_args a = {quant->multiplier, quant->shift, quant->exact, quant->high_shift,
                           params->output_offset, params->activation.min, params->activation.max};
    const int32_t steps = kp / STEP;
    const int32_t blocked = out_depth / ROWS * ROWS;
    /* The input widened once per batch row into scratch; or, without that scratch, widened as it is read:
     * the whole STEPs of the row in place, the rest (zero-padded to one STEP) from `tail` on the stack. */
    const int widened = ctx->buf != NULL && ctx->size >= 2 * kp;
    const int32_t full = widened ? steps : depth / STEP, rest = steps - full;
    /* halves of STEP columns per row, the last half skipped where it is padding only */
    const int32_t halves = 2 * steps - (kp - depth >= STEP / 2 ? 1 : 0), rest_halves = halves - 2 * full;
    uint32_t tail[STEP / 2];
    for (int32_t b = 0; b < input_dims->n; ++b) {
        const int8_t *in = input + b * depth;
        const uint32_t *x = widened ? (const uint32_t *)ctx->buf : tail;
        int8_t *out = output + b * out_depth;
        /* The blocks before `head` read a widened row (`lent`): with the scratch, all of them; without, an
         * output row longer than the widened input (2 * kp bytes) lends its last bytes to it, and the blocks
         * whose outputs lie before those bytes read it there; the later ones, whose group may write over it,
         * widen as they load. Only apart from the input. */
        int32_t head = 0;
        const uint32_t *lent = NULL;
        if (!widened && ((uintptr_t)(out + out_depth) <= (uintptr_t)input ||
                         (uintptr_t)out >= (uintptr_t)(input + input_dims->n * depth))) {
            const uintptr_t copy = ((uintptr_t)(out + out_depth) - 2u * (uintptr_t)kp) & ~(uintptr_t)3u;
            if (out_depth > 2 * kp + 4 * ROWS && copy >= (uintptr_t)out + 4 * ROWS) {
                head = (int32_t)(copy - (uintptr_t)out) / ROWS * ROWS;
                head = head < blocked ? head : blocked;
                lent = (const uint32_t *)copy;
                widen(in, depth, kp, (uint32_t *)copy);
            }
        }
        if (widened) { /* every block reads the widened row */
            widen(in, depth, kp, (uint32_t *)ctx->buf);
            head = blocked;
            lent = x;
        } else if (rest != 0) {
            widen(in + full * STEP, depth - full * STEP, STEP, tail);
        }
        const int aligned = ((uintptr_t)in & 3u) == 0; /* block4_s8w's LDRD needs word alignment */
        const uint32_t *w = (const uint32_t *)(const void *)filter;
        for (int32_t o = 0; o < blocked; o += GROUP) {
            const int32_t n = blocked - o < GROUP ? blocked - o : GROUP;
            int32_t acc[GROUP];
            for (int32_t r = 0; r < n; r += ROWS) {
                if (o + r < head) {
                    block4(w, lent, halves, bias + o + r, acc + r);
                } else {
                    if (aligned) { /* direct calls: the static stack bound follows them */
                        block4_s8w(w, in, full, bias + o + r, acc + r);
                    } else {
                        block4_s8(w, in, full, bias + o + r, acc + r);
                    }
                    if (rest != 0) {
                        block4(w + full * STEP, x, rest_halves, acc + r, acc + r);
                    }
                }
                w += ROWS * kp / 4;
            }
            finish(&a, acc, o, n, out + o);
        }
        for (int32_t o = blocked; o < out_depth; ++o) {
            int32_t acc;
            if (widened) {
                acc = row1(w, x, halves, bias[o]);
            } else {
                acc = row1_s8(w, in, full, bias[o]);
                if (rest != 0) {
                    acc = row1(w + full * STEP / 4, x, rest_halves, acc);
                }
            }
            finish(&a, &acc, o, 1, out + o);
            w += kp / 4;
        }
    }
    return TM_OK;
}

tm_status tm_fully_connected_s8_dsp(const tm_context *ctx, const tm_fully_connected_params *params,
                                    const tm_fully_connected_fast_quant *quant,
                                    const tm_dims *input_dims, const int8_t *input,
                                    const tm_dims *filter_dims, const int8_t *filter,
                                    const int32_t *bias,
                                    const tm_dims *output_dims, int8_t *output)
{
    return fully_connected(ctx, params, quant, 0, input_dims, input, filter_dims, filter, bias, output_dims,
                           output);
}

tm_status tm_fully_connected_s8_dsp_tflm(const tm_context *ctx, const tm_fully_connected_params *params,
                                         const tm_fully_connected_fast_quant *quant,
                                         const tm_dims *input_dims, const int8_t *input,
                                         const tm_dims *filter_dims, const int8_t *filter,
                                         const int32_t *bias,
                                         const tm_dims *output_dims, int8_t *output)
{
    return fully_connected(ctx, params, quant, 1, input_dims, input, filter_dims, filter, bias, output_dims,
                           output);
}

int32_t tm_fully_connected_s8_dsp_get_buffer_size(const tm_dims *input_dims, const tm_dims *filter_dims,
                                                  const tm_dims *output_dims)
{
    (void)input_dims;
    (void)filter_dims;
    (void)output_dims;
    return 0;
}

int32_t tm_fully_connected_s8_dsp_widened_size(const tm_dims *input_dims)
{
    return input_dims == NULL || input_dims->c <= 0 ? 0 : 2 * padded_depth(input_dims->c);
}
