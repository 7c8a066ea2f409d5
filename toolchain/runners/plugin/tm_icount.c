/*
 * tm_icount: a QEMU TCG plugin that counts executed guest instructions and
 * records the running count every time a marker function is entered.
 *
 * Written against the QEMU TCG plugin API version 1 (QEMU_PLUGIN_VERSION 1,
 * as documented in QEMU 7.2's docs/devel/tcg-plugins.rst and
 * include/qemu/qemu-plugin.h). Debian's qemu-system-arm 7.2 exports the API
 * but ships no header, so the few types and functions used here are declared
 * below by hand; QEMU resolves them when it dlopen()s this library.
 *
 * Arguments (-plugin tm_icount.so,marker=0xADDR,out=/path[,mode=insn|tb][,classes=on]):
 *   marker=0xADDR  guest address of the marker function's first instruction
 *                  (Thumb bit cleared). Optional: without it only the total
 *                  is reported.
 *   out=PATH       result file, written at exit:
 *                      hits N
 *                      <count before the 1st marker execution>
 *                      ...
 *                      total <count>
 *   mode=insn      (default) an inline "add 1" before every instruction.
 *                  Exact even when a translation block stops half-way
 *                  (MMIO under -icount makes QEMU abandon the rest of the
 *                  block and re-translate; a fault does the same).
 *   mode=tb        one inline "add n" at the start of each block: faster,
 *                  but it counts the whole block up front, so every block
 *                  cut short overcounts by the instructions it skipped.
 *   classes=on     (mode=insn only) also count executions per timing class
 *                  (tm_classify.h): each instruction's inline add goes to
 *                  its class's counter, LDM/STM-like ones add their register
 *                  count to "xfer", and a callback at every block entry
 *                  decides whether the conditional branch that ended the
 *                  previous block was taken ("taken"). The file then reads
 *                      classes <name> ... xfer taken
 *                      hits N
 *                      <count> <per-class counts...> <xfer> <taken>
 *                      ...
 *                      total <count> <per-class counts...> <xfer> <taken>
 *                  where <count> is the instruction count as above.
 *
 * A "hit" is the number of instructions executed *before* the marker
 * instruction, i.e. the instructions of the block before the marker are
 * counted and the marker itself and everything after it are not.
 *
 * The counter is a plain (non-atomic) uint64_t: exact for one vCPU, which is
 * what Cortex-M machines have. Installing on a multi-vCPU machine is refused.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm_classify.h"

/* ---- QEMU TCG plugin API, version 1 (declarations used by this file) ---- */

#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
#define QEMU_PLUGIN_VERSION 1

typedef uint64_t qemu_plugin_id_t;

typedef struct qemu_info_t {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    union {
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    };
} qemu_info_t;

struct qemu_plugin_tb;
struct qemu_plugin_insn;

enum qemu_plugin_cb_flags {
    QEMU_PLUGIN_CB_NO_REGS,
    QEMU_PLUGIN_CB_R_REGS,
    QEMU_PLUGIN_CB_RW_REGS,
};

enum qemu_plugin_op {
    QEMU_PLUGIN_INLINE_ADD_U64,
};

typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index,
                                            void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id,
                                               struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
                                           qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb,
                                              enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                            qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags,
                                            void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
                                                enum qemu_plugin_op op,
                                                void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb,
                                                 size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id,
                                    qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb,
                                          qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags,
                                          void *userdata);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
char *qemu_plugin_insn_disas(const struct qemu_plugin_insn *insn);

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

/* ---- plugin state ---- */

static uint64_t insn_count;     /* instructions executed so far */
static uint64_t marker_addr;
static bool have_marker;
static bool tb_mode;
static char *out_path;

/*
 * classes=on: counters[0..TM_N_CLASSES) per class, then XFER and TAKEN. A hit
 * records insn_count followed by all counters (N_RECORD values).
 */
#define XFER TM_N_CLASSES
#define TAKEN (TM_N_CLASSES + 1)
#define N_COUNTERS (TM_N_CLASSES + 2)
static bool classes;
static uint64_t counters[N_COUNTERS];
static size_t n_record = 1;   /* values per hit: 1, or 1 + N_COUNTERS */

static uint64_t *hits;        /* n_hits records of n_record values */
static size_t n_hits, cap_hits;

/*
 * classes=on: one per translated block (never freed: blocks are translated a
 * few thousand times per run). `executed` is bumped inline by the block's
 * final conditional branch, so a block cut short before it (MMIO under
 * -icount, an exception) is not mistaken for a branch decision.
 */
struct block {
    uint64_t start;           /* address of the block's first instruction */
    bool cond_exit;           /* ends in a conditional branch */
    uint64_t fallthrough;     /* ... the address after it */
    uint64_t executed;        /* inline: times that branch executed */
    uint64_t decided;         /* executions already resolved */
};
static struct block *last_block;   /* the block that ran before this one */

/*
 * Errors go to stderr: qemu_plugin_outs() writes to QEMU's log, which is
 * only shown with "-d plugin".
 */
__attribute__((format(printf, 1, 2)))
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tm_icount: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void record_hit(uint64_t count)
{
    if (n_hits == cap_hits) {
        size_t cap = cap_hits ? 2 * cap_hits : 1024;
        uint64_t *p = realloc(hits, cap * n_record * sizeof *p);
        if (!p) {
            say("out of memory recording marker hits");
            abort();
        }
        hits = p;
        cap_hits = cap;
    }
    uint64_t *rec = hits + n_hits++ * n_record;
    rec[0] = count;
    if (classes) {
        memcpy(rec + 1, counters, sizeof counters);
    }
}

static void count_class(const struct tm_insn_class *c)
{
    counters[c->cls]++;
    counters[XFER] += c->xfer;
}

/*
 * classes=on, at every block entry: if the previous block ended in a
 * conditional branch that executed, it was taken unless execution continues
 * at its fall-through address. An interrupt taken right after a not-taken
 * branch reads as taken (rare: the harness takes no interrupt while it
 * measures).
 */
static void block_entry(unsigned int vcpu_index, void *udata)
{
    (void)vcpu_index;
    struct block *here = udata;
    struct block *prev = last_block;
    if (prev && prev->cond_exit && prev->executed != prev->decided) {
        prev->decided = prev->executed;
        if (here->start != prev->fallthrough) {
            counters[TAKEN]++;
        }
    }
    last_block = here;
}

/*
 * mode=insn: the marker instruction carries no inline add; this callback
 * records the count (all earlier instructions already added) and then counts
 * the marker itself. The result does not depend on the order in which QEMU
 * emits an instruction's callback and inline ops.
 */
static void marker_exec_insn_mode(unsigned int vcpu_index, void *udata)
{
    (void)vcpu_index;
    record_hit(insn_count);
    insn_count++;
    if (udata) {
        count_class(udata);
    }
}

/*
 * mode=tb: the block's inline add ran at block entry and already counted all
 * of its n instructions; udata holds n - k, the number of instructions from
 * the marker (index k) to the end of the block, which are not executed yet.
 */
static void marker_exec_tb_mode(unsigned int vcpu_index, void *udata)
{
    (void)vcpu_index;
    record_hit(insn_count - (uint64_t)(uintptr_t)udata);
}

/* classes=on: inline adds to the instruction's class (and transfer) counters. */
static void count_inline(struct qemu_plugin_insn *insn, const struct tm_insn_class *c)
{
    qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
                                               &counters[c->cls], 1);
    if (c->xfer) {
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
                                                   &counters[XFER], c->xfer);
    }
}

static struct tm_insn_class classify_insn(const struct qemu_plugin_insn *insn,
                                          struct tm_context *ctx)
{
    char *text = qemu_plugin_insn_disas(insn);
    struct tm_insn_class c = tm_classify(qemu_plugin_insn_data(insn), qemu_plugin_insn_size(insn),
                                         text ? text : "", ctx);
    free(text);
    return c;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    struct tm_context ctx = {0};
    struct block *block = NULL;

    if (tb_mode && n > 0) {
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64,
                                                 &insn_count, n);
    }
    if (classes && n > 0) {
        block = calloc(1, sizeof *block);
        if (!block) {
            say("out of memory translating a block");
            abort();
        }
        block->start = qemu_plugin_insn_vaddr(qemu_plugin_tb_get_insn(tb, 0));
        qemu_plugin_register_vcpu_tb_exec_cb(tb, block_entry, QEMU_PLUGIN_CB_NO_REGS, block);
    }
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        bool is_marker = have_marker && qemu_plugin_insn_vaddr(insn) == marker_addr;

        if (tb_mode) {
            if (is_marker) {
                qemu_plugin_register_vcpu_insn_exec_cb(
                    insn, marker_exec_tb_mode, QEMU_PLUGIN_CB_NO_REGS,
                    (void *)(uintptr_t)(n - i));
            }
            continue;
        }
        struct tm_insn_class *marker = NULL;  /* counted by the marker callback */
        if (classes) {
            struct tm_insn_class c = classify_insn(insn, &ctx);
            if (is_marker) {
                marker = malloc(sizeof *marker);
                if (!marker) {
                    say("out of memory translating a block");
                    abort();
                }
                *marker = c;
            } else {
                count_inline(insn, &c);
            }
            if (c.cond_branch && i == n - 1) {
                block->cond_exit = true;
                block->fallthrough = qemu_plugin_insn_vaddr(insn) + qemu_plugin_insn_size(insn);
                qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
                                                           &block->executed, 1);
            }
        }
        if (is_marker) {
            qemu_plugin_register_vcpu_insn_exec_cb(
                insn, marker_exec_insn_mode, QEMU_PLUGIN_CB_NO_REGS, marker);
        } else {
            qemu_plugin_register_vcpu_insn_exec_inline(
                insn, QEMU_PLUGIN_INLINE_ADD_U64, &insn_count, 1);
        }
    }
}

static void write_record(FILE *f, const uint64_t *rec)
{
    fprintf(f, "%" PRIu64, rec[0]);
    for (size_t k = 1; k < n_record; k++) {
        fprintf(f, " %" PRIu64, rec[k]);
    }
    fputc('\n', f);
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    char tmp[4096];
    int len = snprintf(tmp, sizeof tmp, "%s.tmp", out_path);
    if (len < 0 || (size_t)len >= sizeof tmp) {
        say("out= path too long");
        return;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        say("cannot write %s", tmp);
        return;
    }
    if (classes) {
        fputs("classes", f);
        for (size_t k = 0; k < TM_N_CLASSES; k++) {
            fprintf(f, " %s", tm_class_names[k]);
        }
        fputs(" xfer taken\n", f);
    }
    fprintf(f, "hits %zu\n", n_hits);
    for (size_t i = 0; i < n_hits; i++) {
        write_record(f, hits + i * n_record);
    }
    uint64_t total[1 + N_COUNTERS];
    total[0] = insn_count;
    memcpy(total + 1, counters, sizeof counters);
    fputs("total ", f);
    write_record(f, total);
    /* write to a temporary file and rename: a reader never sees half a file */
    if (fclose(f) != 0 || rename(tmp, out_path) != 0) {
        say("cannot write %s", out_path);
        remove(tmp);
    }
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
                                           const qemu_info_t *info,
                                           int argc, char **argv)
{
    if (info->system_emulation &&
        info->system.smp_vcpus > 1) {
        say("needs a single vCPU (the counter is not per-vCPU)");
        return -1;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "marker=", 7) == 0) {
            char *end;
            marker_addr = strtoull(a + 7, &end, 0);
            if (end == a + 7 || *end != '\0') {
                say("bad marker address '%s'", a + 7);
                return -1;
            }
            have_marker = true;
        } else if (strncmp(a, "out=", 4) == 0) {
            out_path = strdup(a + 4);
        } else if (strcmp(a, "mode=insn") == 0) {
            tb_mode = false;
        } else if (strcmp(a, "mode=tb") == 0) {
            tb_mode = true;
        } else if (strcmp(a, "classes=on") == 0) {
            classes = true;
        } else if (strcmp(a, "classes=off") == 0) {
            classes = false;
        } else {
            say("unknown argument '%s' (expected marker=, out=, mode=insn|tb, classes=on|off)", a);
            return -1;
        }
    }
    if (classes && tb_mode) {
        say("classes=on needs mode=insn (a block cut short would be misclassified)");
        return -1;
    }
    n_record = classes ? 1 + N_COUNTERS : 1;
    if (!out_path || !*out_path) {
        say("missing out=PATH");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
