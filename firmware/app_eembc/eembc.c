/*
 * EEMBC runner mode: the firmware side of the MLPerf Tiny / EEMBC EnergyRunner performance-mode protocol
 * (docs/PROTOCOL.md, "EEMBC runner mode"), so that the official host software can drive the generated model
 * on a board. Commands arrive on the console UART, each ended by '%' (at most EE_CMD_SIZE characters before
 * it); every reply line ends with "\r\n" and every command's reply with "m-ready". Runs until power-off.
 *
 * The build defines the benchmark (CMake TM_EEMBC_PROFILE, from the model's input or --eembc-profile):
 *   TM_EEMBC_MODEL   "kws01" | "vww01" | "ic01" | "ad01", reported by `profile`
 *   TM_EEMBC_INPUT_U8_OFFSET  (vww01, ic01) the host sends uint8 pixels; int8 input = byte - 128
 *   TM_EEMBC_INPUT_F32        (ad01) the host sends little-endian float32 values, quantized here with the
 *                             model input's scale and zero point; results: the mean squared error between
 *                             them and the dequantized output (the reference's anomaly score)
 *   (neither: kws01) the host sends the int8 input bytes as they are
 *   TM_EEMBC_OUTPUT  which model output the results are read from (the final one of an early-exit model)
 * No heap: the input buffer, the quantized input and the command line are static.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "eembc_text.h"
#include "model.h"
#include "tm_board.h"

#if TM_MODEL_NUM_INPUTS != 1
#error "the EEMBC runner mode drives single-input models"
#endif
#if !defined(TM_EEMBC_MODEL) || !defined(TM_EEMBC_OUTPUT)
#error "the build (CMake APP=eembc) defines TM_EEMBC_MODEL and TM_EEMBC_OUTPUT"
#endif

#define EE_CMD_SIZE 80u      /* characters of a command before its '%' */
#define EE_CMD_TERMINATOR '%'
#define EE_FW_VERSION "MLPerf Tiny Firmware V0.1.0 (tinyml-toolchain)"
#define EE_DEVICE_NAME "dut"
#define EE_VENDOR_NAME "tinyml-toolchain"
#define INFER_DEFAULT_N 1u
#define INFER_DEFAULT_WARMUP 10u
#define NEVER_EXIT 128 /* exit threshold: run to the final output */

#define PASTE3(a, b, c) a##b##c
#define EXPAND3(a, b, c) PASTE3(a, b, c)
#define OUTPUT_SCALE EXPAND3(TM_MODEL_OUTPUT, TM_EEMBC_OUTPUT, _SCALE)
#define OUTPUT_ZERO_POINT EXPAND3(TM_MODEL_OUTPUT, TM_EEMBC_OUTPUT, _ZERO_POINT)
#define OUTPUT_SIZE EXPAND3(TM_MODEL_OUTPUT, TM_EEMBC_OUTPUT, _SIZE)

#if defined(TM_EEMBC_INPUT_F32)
#if !defined(TM_MODEL_INPUT0_SCALE)
#error "ad01 quantizes float32 input: the model input needs a scale and zero point"
#endif
#define DB_CAPACITY (TM_MODEL_INPUT0_SIZE * 4u)
#if OUTPUT_SIZE != TM_MODEL_INPUT0_SIZE
#error "ad01 compares the output with the input: an autoencoder, as many outputs as inputs"
#endif
#else
#define DB_CAPACITY TM_MODEL_INPUT0_SIZE
#endif

static char cmd_line[EE_CMD_SIZE + 1u];
static uint32_t cmd_len;
static int cmd_overflow; /* more than EE_CMD_SIZE characters came before the '%' */

static uint8_t db_buffer[DB_CAPACITY] __attribute__((aligned(4))); /* what `db` commands load */
static uint32_t db_size; /* bytes announced by `db load N` (0: none) */
static uint32_t db_pos;  /* bytes received since */

static int8_t model_input[TM_MODEL_INPUT_SIZE] __attribute__((aligned(4))); /* copied into the arena each run */

/* Performance mode's timestamp: a line the host reads (in energy mode it would be a GPIO edge instead). */
static void timestamp(void)
{
    tm_print("m-lap-us-");
    tm_print_u64(ee_now_us());
    tm_print("\r\n");
}

static float dequantized_output(uint32_t i)
{
    const int8_t *out = (const int8_t *)tm_model_output(TM_EEMBC_OUTPUT);
    return OUTPUT_SCALE * (float)((int32_t)out[i] - (int32_t)OUTPUT_ZERO_POINT);
}

#if defined(TM_EEMBC_INPUT_F32)
static float db_float(uint32_t i)
{
    float v;
    memcpy(&v, &db_buffer[4u * i], sizeof v); /* little-endian float32, as the host sends it */
    return v;
}

/* real -> int8 with the input's scale and zero point: round half away from zero, saturate. */
static int8_t quantize_input(float x)
{
    const float q = x / TM_MODEL_INPUT0_SCALE;
    if (q != q) {
        return (int8_t)TM_MODEL_INPUT0_ZERO_POINT;
    }
    const float rounded = q >= 0.0f ? q + 0.5f : q - 0.5f;
    float v = (float)(int32_t)(rounded > 1.0e6f ? 1.0e6f : rounded < -1.0e6f ? -1.0e6f : rounded);
    v += (float)TM_MODEL_INPUT0_ZERO_POINT;
    return (int8_t)(v > 127.0f ? 127 : v < -128.0f ? -128 : (int32_t)v);
}
#endif

/* The db buffer, converted to the model's int8 input. 0, or -1 after an e- line (wrong amount of data). */
static int load_tensor(void)
{
    if (db_pos != DB_CAPACITY) {
        tm_print("e-[Input db has ");
        tm_print_u64(db_pos);
        tm_print(" bytes, expected ");
        tm_print_u64(DB_CAPACITY);
        ee_print_line("]");
        return -1;
    }
    for (uint32_t i = 0; i < TM_MODEL_INPUT0_SIZE; i++) {
#if defined(TM_EEMBC_INPUT_F32)
        model_input[TM_MODEL_INPUT0_OFFSET + i] = quantize_input(db_float(i));
#elif defined(TM_EEMBC_INPUT_U8_OFFSET)
        model_input[TM_MODEL_INPUT0_OFFSET + i] = (int8_t)((int32_t)db_buffer[i] - 128);
#else
        model_input[TM_MODEL_INPUT0_OFFSET + i] = (int8_t)db_buffer[i];
#endif
    }
    return 0;
}

static int32_t model_status; /* the first error tm_model_run returned since the last check */

static void infer_once(void)
{
    const int32_t status = tm_model_run(model_input, NULL, NEVER_EXIT);
    if (status < 0 && model_status == 0) {
        model_status = status;
    }
}

static void results(void)
{
    tm_print("m-results-[");
#if defined(TM_EEMBC_INPUT_F32)
    float sum = 0.0f;
    for (uint32_t i = 0; i < OUTPUT_SIZE; i++) {
        const float diff = dequantized_output(i) - db_float(i);
        sum += diff * diff;
    }
    ee_print_fixed3(sum / (float)OUTPUT_SIZE);
#else
    for (uint32_t i = 0; i < OUTPUT_SIZE; i++) {
        if (i > 0) {
            tm_print(",");
        }
        ee_print_fixed3(dequantized_output(i));
    }
#endif
    ee_print_line("]");
}

/* Ours, not the reference's: the int8 output values behind m-results, for exact comparisons. */
static void quantized_results(void)
{
    const int8_t *out = (const int8_t *)tm_model_output(TM_EEMBC_OUTPUT);
    tm_print("m-qresults-[");
    for (uint32_t i = 0; i < OUTPUT_SIZE; i++) {
        if (i > 0) {
            tm_print(",");
        }
        tm_print_i32(out[i]);
    }
    ee_print_line("]");
}

static void infer(char *rest)
{
    int32_t n = INFER_DEFAULT_N;
    int32_t warmup = INFER_DEFAULT_WARMUP;
    const char *word = ee_next_word(&rest);
    if (word != NULL) {
        n = ee_parse_count(word);
        if (n <= 0) {
            ee_print_line("e-[Inference iterations must be >0]");
            return;
        }
        word = ee_next_word(&rest);
        if (word != NULL) {
            warmup = ee_parse_count(word);
            if (warmup < 0) {
                ee_print_line("e-[Inference warmup must be >=0]");
                return;
            }
        }
    }
    if (load_tensor() != 0) {
        return;
    }
    tm_print("m-warmup-start-");
    tm_print_i32(warmup);
    tm_print("\r\n");
    for (int32_t i = 0; i < warmup; i++) {
        infer_once();
    }
    ee_print_line("m-warmup-done");
    tm_print("m-infer-start-");
    tm_print_i32(n);
    tm_print("\r\n");
    timestamp();
    for (int32_t i = 0; i < n; i++) {
        infer_once();
    }
    timestamp();
    ee_print_line("m-infer-done");
    if (model_status != 0) {
        tm_print("e-[Model run failed: status ");
        tm_print_i32(model_status);
        ee_print_line("]");
        model_status = 0;
        return;
    }
    results();
}

static void db_load(const char *word)
{
    if (word == NULL) {
        ee_print_line("e-[Command 'db load' requires the # of bytes]");
        return;
    }
    const int32_t n = ee_parse_count(word);
    if (n <= 0) {
        ee_print_line("e-[Command 'db load' must be >0 bytes]");
        return;
    }
    if ((uint32_t)n > DB_CAPACITY) {
        tm_print("e-[Supplied buffer size ");
        tm_print_i32(n);
        tm_print(" exceeds maximum of ");
        tm_print_u64(DB_CAPACITY);
        ee_print_line("]");
        return;
    }
    db_size = (uint32_t)n;
    db_pos = 0;
    tm_print("m-[Expecting ");
    tm_print_i32(n);
    ee_print_line(" bytes]");
}

static void db_print(void)
{
    for (uint32_t i = 0; i < db_size; i++) {
        tm_print(i % 8u == 0 ? "m-buffer-" : "-");
        tm_print_hex_bytes(&db_buffer[i], 1);
        if ((i + 1u) % 8u == 0 || i + 1u == db_size) {
            tm_print("\r\n");
        }
    }
}

/* Hex digit pairs appended to the buffer; m-load-done once the announced bytes are in, the rest checked but
 * ignored. A bad digit stops the line there (the bytes before it stay loaded), as the reference does. */
static void db_data(const char *hex)
{
    if (db_size == 0) {
        ee_print_line("e-[Buffer not allocated]");
        return;
    }
    const size_t digits = strlen(hex);
    if (digits % 2u != 0) {
        ee_print_line("e-[Insufficent number of hex digits]");
        return;
    }
    for (size_t i = 0; i < digits; i += 2u) {
        const int hi = ee_hex_digit(hex[i]);
        const int lo = ee_hex_digit(hex[i + 1u]);
        if (hi < 0 || lo < 0) {
            const char pair[3] = {hex[i], hex[i + 1u], 0};
            tm_print("e-[Invalid hex digit '");
            tm_print(pair);
            ee_print_line("']");
            return;
        }
        if (db_pos < db_size) {
            db_buffer[db_pos++] = (uint8_t)(hi << 4 | lo);
            if (db_pos == db_size) {
                ee_print_line("m-load-done");
            }
        }
    }
}

static void db(char *rest)
{
    char *word = ee_next_word(&rest);
    if (word == NULL) {
        ee_print_line("e-[Command 'db' requires a subcommand]");
    } else if (ee_same(word, "load")) {
        db_load(ee_next_word(&rest));
    } else if (ee_same(word, "print")) {
        db_print();
    } else {
        db_data(word);
    }
}

static void help(void)
{
    ee_print_line(EE_FW_VERSION);
    ee_print_line("");
    ee_print_line("help         : Print this information");
    ee_print_line("name         : Print the name of the device");
    ee_print_line("timestamp    : Generate a timestamp");
    ee_print_line("db SUBCMD    : Manipulate a generic byte buffer");
    ee_print_line("  load N     : Allocate N bytes and set load counter");
    ee_print_line("  db HH[HH]* : Load 8-bit hex byte(s) until N bytes");
    ee_print_line("  print      : Print the buffer as hex");
    ee_print_line("infer N [W=10]: Load input, execute N inferences after W warmup loops");
    ee_print_line("results      : Return the result fp32 vector");
    ee_print_line("qresults     : Return the int8 output behind the results");
}

static void dispatch(char *line)
{
    char *rest = line;
    const char *word = ee_next_word(&rest);
    if (word == NULL) {
        ee_print_line("e-[Unknown command: ]");
    } else if (ee_same(word, "name")) {
        ee_print_line("m-name-" EE_DEVICE_NAME "-[" EE_VENDOR_NAME "]");
    } else if (ee_same(word, "timestamp")) {
        timestamp();
    } else if (ee_same(word, "profile")) {
        ee_print_line("m-profile-[" EE_FW_VERSION "]");
        ee_print_line("m-model-[" TM_EEMBC_MODEL "]");
    } else if (ee_same(word, "help")) {
        help();
    } else if (ee_same(word, "db")) {
        db(rest);
    } else if (ee_same(word, "infer")) {
        infer(rest);
    } else if (ee_same(word, "results")) {
        results();
    } else if (ee_same(word, "qresults")) {
        quantized_results();
    } else {
        tm_print("e-[Unknown command: ");
        tm_print(word);
        ee_print_line("]");
    }
    ee_print_line("m-ready");
}

/* One received character: '%' ends the command (an overlong one is reported, not run); line breaks are
 * ignored so that a terminal can type commands too. */
static void receive(char c)
{
    if (c == EE_CMD_TERMINATOR) {
        if (cmd_overflow) {
            tm_print("e-[Command too long: over ");
            tm_print_u64(EE_CMD_SIZE);
            ee_print_line(" characters]");
            ee_print_line("m-ready");
        } else {
            cmd_line[cmd_len] = '\0';
            dispatch(cmd_line);
        }
        cmd_len = 0;
        cmd_overflow = 0;
    } else if (c == '\r' || c == '\n') {
        return;
    } else if (cmd_len < EE_CMD_SIZE) {
        cmd_line[cmd_len++] = c;
    } else {
        cmd_overflow = 1;
    }
}

int main(void)
{
    tm_board_init();
    tm_stack_paint();
    ee_print_line("m-timestamp-mode-performance");
    timestamp();
    ee_print_line("m-init-done");
    ee_print_line("m-ready");
    for (;;) {
        const int c = tm_board_getc();
        if (c >= 0) {
            receive((char)c);
        }
    }
}
