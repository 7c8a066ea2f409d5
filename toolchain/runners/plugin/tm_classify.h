/*
 * tm_classify.h: sorts a Thumb instruction into a timing class once, when
 * QEMU translates it, so that tm_icount can count executions per class with
 * inline adds. The classes are facts about the instruction stream only; the
 * cycles each class costs on a given core live in toolchain/runners/cycles.py
 * (which reads the class names from the plugin's output, not this order).
 *
 * Input: QEMU's disassembly (capstone 4, Armv7E-M: it knows the scalar, DSP
 * and FPv4/FPv5 instructions) and the raw bytes. Capstone 4 predates
 * Armv8.1-M, so the low-overhead-branch (LOB) and MVE instructions are
 * recognised from their encodings, before the text is looked at.
 *
 * Context used (static, within one translation block):
 *   - load/store pipelining: a single LDR/STR right after a single LDR
 *     without writeback whose destination is not in the new address
 *     (Cortex-M4 TRM 3.3.2) is classified "piped";
 *   - MVE overlap: a vector instruction right after one of the other kind
 *     (memory vs. arithmetic) is classified "mve_overlap";
 *   - IT blocks: a branch inside one is conditional.
 * Header-only (static functions) so the plugin stays one translation unit.
 */
#ifndef TM_CLASSIFY_H
#define TM_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Every executed instruction falls in exactly one class. */
#define TM_CLASSES(X)                                                        \
    X(ALU, "alu")                 /* data processing, moves, IT, hints */    \
    X(LOAD, "load")               /* LDR/LDRB/LDRH/LDRS*, LDREX */           \
    X(LOAD_PIPED, "load_piped")   /* load pipelined after an LDR */          \
    X(STORE, "store")             /* STR immediate offset, or piped */       \
    X(STORE_REG, "store_reg")     /* STR register offset, not piped */       \
    X(MULTI, "multi")             /* LDM/STM/PUSH/POP/LDRD/STRD (+N: xfer) */\
    X(MULTI_PC, "multi_pc")       /* POP/LDM loading pc (+N: xfer) */        \
    X(LOAD_PC, "load_pc")         /* LDR pc */                               \
    X(BRANCH, "branch")           /* B, BL, BX, BLX, MOV/ADD pc: taken */    \
    X(BRANCH_COND, "branch_cond") /* B<c>, CBZ/CBNZ, branch in IT block */   \
    X(TABLE_BRANCH, "table_branch") /* TBB/TBH */                            \
    X(MUL, "mul")                 /* 32-bit result: MUL, SMUL*, SMUAD... */  \
    X(MAC, "mac")                 /* 32-bit accumulate: MLA, MLS, SMLAD... */\
    X(MUL_LONG, "mul_long")       /* SMULL, UMULL */                         \
    X(MAC_LONG, "mac_long")       /* SMLAL*, UMLAL, UMAAL, SMLALD... */      \
    X(DIV, "div")                 /* SDIV, UDIV */                           \
    X(FP, "fp")                   /* FPU data processing */                  \
    X(FP_MEM, "fp_mem")           /* VLDR/VSTR/VLDM/VSTM/VPUSH/VPOP (FPU) */ \
    X(MVE_OP, "mve_op")           /* MVE arithmetic, moves, predication */   \
    X(MVE_MEM, "mve_mem")         /* MVE loads and stores */                 \
    X(MVE_OVERLAP, "mve_overlap") /* MVE after one of the other kind */      \
    X(LOOP, "loop")               /* DLS/WLS/DLSTP/WLSTP/LCTP/VCTP */        \
    X(LOOP_END, "loop_end")       /* LE/LETP */                              \
    X(BARRIER, "barrier")         /* DSB/DMB/ISB */

#define TM_ENUM(name, text) TM_CLASS_##name,
enum tm_class { TM_CLASSES(TM_ENUM) TM_N_CLASSES };
#undef TM_ENUM

#define TM_NAME(name, text) text,
static const char *const tm_class_names[TM_N_CLASSES] = {TM_CLASSES(TM_NAME)};
#undef TM_NAME

/* What the next instruction of the same block needs to know about this one. */
struct tm_context {
    int it_left;        /* instructions still inside an IT block */
    bool after_ldr;     /* previous: single LDR without writeback */
    char ldr_rt[8];     /* ... and its destination register */
    int vector_kind;    /* previous: 0 not MVE, 1 MVE memory, 2 MVE arithmetic */
};

struct tm_insn_class {
    enum tm_class cls;
    unsigned xfer;      /* registers moved by LDM/STM/PUSH/POP/LDRD/STRD */
    bool cond_branch;   /* taken or not is resolved at run time */
};

static bool tm_is_cond(const char *s)
{
    static const char conds[][3] = {"eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl",
                                    "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le", "al"};
    for (size_t i = 0; i < sizeof conds / sizeof conds[0]; i++) {
        if (strcmp(s, conds[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* mnemonic == base followed by nothing (or by a condition if with_cond). */
static bool tm_is(const char *mn, const char *base, bool with_cond, bool *cond)
{
    size_t n = strlen(base);
    if (strncmp(mn, base, n) != 0) {
        return false;
    }
    if (mn[n] == '\0') {
        *cond = false;
        return true;
    }
    if (with_cond && tm_is_cond(mn + n)) {
        *cond = true;
        return true;
    }
    return false;
}

static bool tm_starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Whole-word occurrence of reg in s[0, n). */
static bool tm_has_reg(const char *s, size_t n, const char *reg)
{
    size_t r = strlen(reg);
    for (size_t i = 0; r && i + r <= n; i++) {
        if (strncmp(s + i, reg, r) == 0 &&
            (i == 0 || !((s[i - 1] >= 'a' && s[i - 1] <= 'z') || (s[i - 1] >= '0' && s[i - 1] <= '9'))) &&
            (i + r == n || !((s[i + r] >= 'a' && s[i + r] <= 'z') || (s[i + r] >= '0' && s[i + r] <= '9')))) {
            return true;
        }
    }
    return false;
}

/* An operand "q0".."q7": a 128-bit vector register, MVE's on M-profile. */
static bool tm_has_q_register(const char *ops)
{
    for (const char *p = ops; *p; p++) {
        if (*p == 'q' && p[1] >= '0' && p[1] <= '7' && (p == ops || p[-1] == ' ' || p[-1] == ',')) {
            return true;
        }
    }
    return false;
}

/* Registers in a "{r4, r5, lr}" or "{r4-r7}" list. */
static unsigned tm_reglist_count(const char *ops, bool *has_pc)
{
    const char *open = strchr(ops, '{');
    const char *close = open ? strchr(open, '}') : NULL;
    *has_pc = false;
    if (!open || !close) {
        return 1;
    }
    unsigned n = 0;
    const char *p = open + 1;
    while (p < close) {
        const char *end = p;
        while (end < close && *end != ',') {
            end++;
        }
        while (p < end && *p == ' ') {
            p++;
        }
        const char *dash = p;
        while (dash < end && *dash != '-') {
            dash++;
        }
        if (dash < end && p[0] == 'r' && dash[1] == 'r') {
            n += (unsigned)(strtol(dash + 2, NULL, 10) - strtol(p + 1, NULL, 10) + 1);
        } else if (end > p) {
            n++;
            if (strncmp(p, "pc", 2) == 0) {
                *has_pc = true;
            }
        }
        p = end + 1;
    }
    return n ? n : 1;
}

/* The operand text's first register ("r3" of "r3, [r1, #4]"). */
static void tm_first_operand(const char *ops, char *out, size_t size)
{
    size_t i = 0;
    while (ops[i] && ops[i] != ',' && ops[i] != ' ' && i + 1 < size) {
        out[i] = ops[i];
        i++;
    }
    out[i] = '\0';
}

/*
 * Armv8.1-M encodings capstone 4 does not know. hw1/hw2: the two halfwords of
 * a 32-bit instruction. Returns true and sets *cls when recognised.
 */
static bool tm_classify_v81m(uint16_t hw1, uint16_t hw2, enum tm_class *cls)
{
    /* Low-overhead branches (Armv8.1-M ARM, "LOB" encodings in the branch space). */
    if ((hw1 & 0xFFCF) == 0xF00F && (hw2 & 0xD001) == 0xC001) {
        *cls = TM_CLASS_LOOP_END;               /* LE, LETP */
        return true;
    }
    if ((hw1 & 0xFF80) == 0xF000 &&
        (hw2 == 0xE001 || (hw2 & 0xD001) == 0xC001 || hw2 == 0xE801)) {
        *cls = TM_CLASS_LOOP;                   /* DLS, DLSTP, WLS, WLSTP, LCTP, VCTP */
        return true;
    }
    /* VPST (predicate the next 1-4 vector instructions): a scalar-side set-up, not a vector operation */
    if ((hw1 & 0xFF8F) == 0xFE01 && (hw2 & 0x0FFF) == 0x0F4D) {
        *cls = TM_CLASS_ALU;
        return true;
    }
    return false;
}

/*
 * The coprocessor/vector space (111x 11xx in the first halfword) when capstone
 * could not decode the instruction: MVE (or an FPU encoding it does not know).
 */
static bool tm_classify_vector(uint16_t hw1, uint16_t hw2, enum tm_class *cls)
{
    /*
     * Coprocessors 10/11 (hw2[11:9] = 101) are the FPU, except in the
     * 0xEF/0xFF space, which Armv8.1-M gives to MVE; everything else here is
     * MVE on an M55.
     */
    if ((hw1 & 0xEC00) == 0xEC00) {
        bool mem = (hw1 & 0xEE00) == 0xEC00;    /* 0xEC/0xED/0xFC/0xFD: loads/stores */
        bool neon_space = (hw1 & 0xEF00) == 0xEF00;
        if (((hw2 >> 9) & 7) == 5 && !neon_space) {
            *cls = mem ? TM_CLASS_FP_MEM : TM_CLASS_FP;
        } else {
            *cls = mem ? TM_CLASS_MVE_MEM : TM_CLASS_MVE_OP;
        }
        return true;
    }
    return false;
}

static enum tm_class tm_classify_text(const char *mn, const char *ops, const struct tm_context *prev,
                                      struct tm_context *ctx, struct tm_insn_class *out, bool in_it)
{
    bool cond = false;
    char first[8];
    tm_first_operand(ops, first, sizeof first);
    bool writes_pc = strcmp(first, "pc") == 0;

    /* branches: B<c> before BL so that "bls"/"blt"/"ble" read as conditions */
    if (tm_is(mn, "b", true, &cond) || tm_is(mn, "bl", true, &cond) ||
        tm_is(mn, "blx", true, &cond) || tm_is(mn, "bx", true, &cond)) {
        out->cond_branch = cond || in_it;
        return out->cond_branch ? TM_CLASS_BRANCH_COND : TM_CLASS_BRANCH;
    }
    if (strcmp(mn, "cbz") == 0 || strcmp(mn, "cbnz") == 0) {
        out->cond_branch = true;
        return TM_CLASS_BRANCH_COND;
    }
    if (strcmp(mn, "tbb") == 0 || strcmp(mn, "tbh") == 0) {
        return TM_CLASS_TABLE_BRANCH;
    }
    if (mn[0] == 'i' && mn[1] == 't' && strspn(mn + 1, "te") == strlen(mn + 1)) {
        ctx->it_left = (int)strlen(mn) - 1;  /* "itte": the next three */
        return TM_CLASS_ALU;
    }
    /* multiple and dual transfers: 1 + N cycles on the M3/M4 */
    if (tm_starts(mn, "ldm") || tm_starts(mn, "stm") || strcmp(mn, "push") == 0 || strcmp(mn, "pop") == 0) {
        bool has_pc;
        out->xfer = tm_reglist_count(ops, &has_pc);
        return has_pc ? TM_CLASS_MULTI_PC : TM_CLASS_MULTI;
    }
    if (tm_starts(mn, "ldrd") || tm_starts(mn, "strd")) {
        out->xfer = 2;
        return TM_CLASS_MULTI;
    }
    if (tm_starts(mn, "ldr") || tm_starts(mn, "str")) {
        bool load = mn[0] == 'l';
        const char *open = strchr(ops, '[');
        const char *close = open ? strchr(open, ']') : NULL;
        size_t alen = open && close ? (size_t)(close - open) : 0;
        bool piped = prev->after_ldr && alen && !tm_has_reg(open, alen, prev->ldr_rt);
        if (load && writes_pc) {
            return TM_CLASS_LOAD_PC;
        }
        if (load) {
            bool writeback = close && (close[1] == '!' || close[1] == ',');
            bool literal = alen && tm_has_reg(open, alen, "pc");
            if (!writeback && !literal && !tm_starts(mn, "ldrex")) {
                ctx->after_ldr = true;   /* the next load/store may pipeline behind this one */
                tm_first_operand(ops, ctx->ldr_rt, sizeof ctx->ldr_rt);
            }
            return piped ? TM_CLASS_LOAD_PIPED : TM_CLASS_LOAD;
        }
        /* register offset: "[r1, r2" (a second register, not an immediate) */
        const char *comma = alen ? memchr(open, ',', alen) : NULL;
        bool reg_offset = comma && comma[1] == ' ' && comma[2] != '#';
        return reg_offset && !piped ? TM_CLASS_STORE_REG : TM_CLASS_STORE;
    }
    if (strcmp(mn, "sdiv") == 0 || strcmp(mn, "udiv") == 0) {
        return TM_CLASS_DIV;
    }
    if (strcmp(mn, "smull") == 0 || strcmp(mn, "umull") == 0) {
        return TM_CLASS_MUL_LONG;
    }
    if (tm_starts(mn, "smlal") || tm_starts(mn, "smlsld") || strcmp(mn, "umlal") == 0 ||
        strcmp(mn, "umaal") == 0) {
        return TM_CLASS_MAC_LONG;
    }
    if (strcmp(mn, "mla") == 0 || strcmp(mn, "mls") == 0 || tm_starts(mn, "smla") ||
        tm_starts(mn, "smlsd") || tm_starts(mn, "smmla") || tm_starts(mn, "smmls") ||
        strcmp(mn, "usada8") == 0) {
        return TM_CLASS_MAC;
    }
    if (strcmp(mn, "mul") == 0 || strcmp(mn, "muls") == 0 || tm_starts(mn, "smul") ||
        tm_starts(mn, "smuad") || tm_starts(mn, "smusd") || tm_starts(mn, "smmul")) {
        return TM_CLASS_MUL;
    }
    if (strcmp(mn, "dsb") == 0 || strcmp(mn, "dmb") == 0 || strcmp(mn, "isb") == 0) {
        return TM_CLASS_BARRIER;
    }
    if (mn[0] == 'v') {
        /*
         * FPU instructions; of MVE only what shares an encoding with the FPU
         * or NEON (capstone 4 knows no MVE): VDUP writes a whole Q register.
         */
        if (tm_starts(mn, "vdup") || tm_has_q_register(ops)) {
            return TM_CLASS_MVE_OP;
        }
        if (tm_starts(mn, "vldm") || tm_starts(mn, "vstm") || tm_starts(mn, "vpush") || tm_starts(mn, "vpop")) {
            bool has_pc;
            const char *open = strchr(ops, '{');
            out->xfer = tm_reglist_count(ops, &has_pc) * (open && open[1] == 'd' ? 2u : 1u);  /* words */
            return TM_CLASS_MULTI;
        }
        return tm_starts(mn, "vldr") || tm_starts(mn, "vstr") ? TM_CLASS_FP_MEM : TM_CLASS_FP;
    }
    if (writes_pc) {
        return TM_CLASS_BRANCH;  /* MOV pc / ADD pc */
    }
    return TM_CLASS_ALU;
}

/*
 * Classify one instruction given its bytes and QEMU's disassembly
 * ("mnemonic operands"); updates ctx for the next instruction of the block.
 */
static struct tm_insn_class tm_classify(const uint8_t *bytes, size_t size, const char *disas,
                                        struct tm_context *ctx)
{
    struct tm_insn_class out = {TM_CLASS_ALU, 0, false};
    const struct tm_context prev = *ctx;
    bool in_it = ctx->it_left > 0;
    enum tm_class cls;

    if (ctx->it_left > 0) {
        ctx->it_left--;
    }
    ctx->after_ldr = false;
    ctx->vector_kind = 0;

    while (*disas == ' ' || *disas == '\t') {
        disas++;
    }
    uint16_t hw1 = (uint16_t)(bytes[0] | bytes[1] << 8);
    uint16_t hw2 = size == 4 ? (uint16_t)(bytes[2] | bytes[3] << 8) : 0;
    /*
     * What capstone 4 prints for an Armv8.1-M vector instruction it cannot
     * decode, or decodes as NEON (the 0xEF/0xFF space, MVE's on M-profile).
     */
    bool undecoded = (hw1 & 0xEF00) == 0xEF00 || disas[0] == '.' || disas[0] == '\0' || tm_starts(disas, "ldc") ||
                     tm_starts(disas, "stc") || tm_starts(disas, "cdp") || tm_starts(disas, "mcr") ||
                     tm_starts(disas, "mrc");
    if (size == 4 && (tm_classify_v81m(hw1, hw2, &cls) ||
                      (undecoded && tm_classify_vector(hw1, hw2, &cls)))) {
        out.cls = cls;
    } else {
        /* "mnemonic[.w|.n] operands": the mnemonic, lower case, without the width suffix */
        char mn[16];
        size_t i = 0;
        while (disas[i] && disas[i] != ' ' && disas[i] != '\t' && disas[i] != '.' && i + 1 < sizeof mn) {
            mn[i] = (char)(disas[i] >= 'A' && disas[i] <= 'Z' ? disas[i] - 'A' + 'a' : disas[i]);
            i++;
        }
        mn[i] = '\0';
        const char *ops = disas + i;
        while (*ops && *ops != ' ' && *ops != '\t') {
            ops++;  /* skip ".w"/".n" */
        }
        while (*ops == ' ' || *ops == '\t') {
            ops++;
        }
        out.cls = tm_classify_text(mn, ops, &prev, ctx, &out, in_it);
    }
    if (out.cls == TM_CLASS_MVE_MEM || out.cls == TM_CLASS_MVE_OP) {
        int kind = out.cls == TM_CLASS_MVE_MEM ? 1 : 2;
        if (prev.vector_kind != 0 && prev.vector_kind != kind) {
            out.cls = TM_CLASS_MVE_OVERLAP;
        }
        ctx->vector_kind = kind;
    }
    return out;
}

#endif /* TM_CLASSIFY_H */
