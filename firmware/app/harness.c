/*
 * Benchmark harness: runs every embedded sample through the generated model and reports outputs,
 * exits and SysTick counts (total and per layer) over the UART, in the line protocol of
 * docs/PROTOCOL.md. Exit code: 0 all samples ran, 1 the model returned an error.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "model.h"
#include "testset.h"
#include "tm_board.h"

static uint64_t layer_marks[TM_MODEL_NUM_LAYERS + 1];

/* Called by model.c (built with TM_PROFILE) before each layer and after the last. noinline: the
 * marker must cost the same at every call site so its cost can be measured once and subtracted. */
__attribute__((noinline)) void tm_profile_layer(int32_t layer)
{
    layer_marks[layer] = tm_board_ticks();
}

static void print_kv(const char *key, uint64_t value)
{
    tm_print(" ");
    tm_print(key);
    tm_print("=");
    tm_print_u64(value);
}

#if defined(TM_DUMP_TENSORS)
static uint32_t dump_sample;

/* Called by model.c after each layer with its output: "TM TENSOR <sample> <layer> <tensor id> <hex>". */
void tm_dump_tensor(int32_t layer, int32_t tensor, const void *data, uint32_t bytes)
{
    tm_print("TM TENSOR ");
    tm_print_u64(dump_sample);
    tm_print(" ");
    tm_print_i32(layer);
    tm_print(" ");
    tm_print_i32(tensor);
    tm_print(" ");
    tm_print_hex_bytes((const uint8_t *)data, bytes);
    tm_print("\n");
}
#endif

/* Ticks one marker adds: two back-to-back markers differ by exactly one marker's cost. */
static uint64_t marker_ticks(void)
{
    tm_profile_layer(0);
    tm_profile_layer(1);
    return layer_marks[1] - layer_marks[0];
}

static void print_layers(void)
{
    for (int32_t i = 0; i < TM_MODEL_NUM_LAYERS; i++) {
        tm_print("TM LAYER ");
        tm_print_i32(i);
        tm_print(" ");
        tm_print(tm_model_layers[i].op);
        tm_print(" ");
        tm_print_u64(tm_model_layers[i].macs);
        tm_print("\n");
    }
}

/* The sample's inputs written where the model reads them: into its arena (no input buffer of our own). */
static void load_sample(uint32_t k)
{
    const uint8_t *sample = &tm_testset_inputs[k * (uint32_t)TM_MODEL_INPUT_SIZE];
    for (int32_t i = 0; i < TM_MODEL_NUM_INPUTS; i++) {
        memcpy(tm_model_input(i), sample + tm_model_input_info[i].offset, tm_model_input_info[i].bytes);
    }
}

/* The outputs as one TM_MODEL_OUTPUT_SIZE-byte buffer would hold them (zero bytes between them), read from
 * the arena. */
static void print_outputs(void)
{
    static const uint8_t zero[4] = {0, 0, 0, 0};
    uint32_t at = 0;
    for (int32_t i = 0; i < TM_MODEL_NUM_OUTPUTS; i++) {
        for (; at < tm_model_output_info[i].offset; at++) {
            tm_print_hex_bytes(zero, 1);
        }
        tm_print_hex_bytes((const uint8_t *)tm_model_output(i), tm_model_output_info[i].bytes);
        at += tm_model_output_info[i].bytes;
    }
    for (; at < TM_MODEL_OUTPUT_SIZE; at++) {
        tm_print_hex_bytes(zero, 1);
    }
}

static int32_t run_sample(uint32_t k)
{
    load_sample(k);
#if defined(TM_DUMP_TENSORS)
    dump_sample = k;
#endif
    uint32_t c0 = tm_board_cycles();
    uint64_t t0 = tm_board_ticks();
    int32_t exit_taken = tm_model_run(NULL, NULL, tm_testset_exit_threshold);
    uint64_t t1 = tm_board_ticks();
    uint32_t c1 = tm_board_cycles();
    if (exit_taken < 0) {
        tm_print("TM ERROR sample=");
        tm_print_u64(k);
        tm_print(" status=");
        tm_print_i32(exit_taken);
        tm_print("\n");
        return exit_taken;
    }
    tm_print("TM SAMPLE ");
    tm_print_u64(k);
    print_kv("exit", (uint64_t)exit_taken);
    print_kv("ticks", t1 - t0);
    print_kv("cycles", (uint32_t)(c1 - c0));
    tm_print(" out=");
    print_outputs();
    tm_print("\nTM LAYERTICKS ");
    tm_print_u64(k);
    /* Layers an early exit skipped keep the previous sample's marks: report only those that ran. */
    for (int32_t i = 0; i < TM_MODEL_NUM_LAYERS; i++) {
        tm_print(" ");
        if (layer_marks[i + 1] >= layer_marks[i] && layer_marks[i] >= t0 && layer_marks[i + 1] <= t1) {
            tm_print_u64(layer_marks[i + 1] - layer_marks[i]);
        } else {
            tm_print("-");
        }
    }
    tm_print("\n");
    return 0;
}

int main(void)
{
    tm_board_init();
    tm_stack_paint();
    tm_print("TM BEGIN protocol=1 board=");
    tm_print(tm_board_name());
    print_kv("samples", tm_testset_count);
    print_kv("layers", TM_MODEL_NUM_LAYERS);
    print_kv("arena", TM_MODEL_ARENA_SIZE);
    print_kv("input_bytes", TM_MODEL_INPUT_SIZE);
    print_kv("output_bytes", TM_MODEL_OUTPUT_SIZE);
    print_kv("tick_hz", tm_board_tick_hz());
    print_kv("marker_ticks", marker_ticks());
    tm_print("\n");
    print_layers();
    int32_t status = 0;
    for (uint32_t k = 0; k < tm_testset_count && status == 0; k++) {
        status = run_sample(k);
    }
    tm_print("TM STACK");
    print_kv("used", tm_stack_used());
    print_kv("size", tm_stack_size());
    tm_print("\nTM END");
    print_kv("status", status == 0 ? 0u : 1u);
    tm_print("\n");
    return status == 0 ? 0 : 1;
}
