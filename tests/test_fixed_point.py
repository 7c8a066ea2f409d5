"""The inline fixed-point helpers of tm_support.h against a plain transcription of TFLite's.

A C harness, built with the host gcc, holds the reference (gemmlowp's SaturatingRoundingDoublingHighMul
and RoundingDivideByPOT, TFLite's MultiplyByQuantizedMultiplier, written the way TFLite writes them)
next to the kernels' helpers and compares them on random triples and on the edge cases: INT32_MIN,
INT32_MAX, multipliers 2^30 and 2^31 - 1, every shift in [-31, 30], exact .5 ties, negative values.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

KERNEL_INCLUDE = Path(__file__).resolve().parents[1] / "firmware" / "kernels" / "include"
RANDOM_TRIPLES = 1 << 22  # per random family; four families

HARNESS = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tm_support.h"

/* ---- Reference: TFLite / gemmlowp, transcribed plainly ------------------------------------ */
static int32_t ref_srdhm(int32_t a, int32_t b)
{
    const int overflow = a == b && a == INT32_MIN;
    const int64_t ab_64 = (int64_t)a * (int64_t)b;
    const int32_t nudge = ab_64 >= 0 ? (1 << 30) : (1 - (1 << 30));
    const int32_t ab_x2_high32 = (int32_t)((ab_64 + nudge) / (1ll << 31));
    return overflow ? INT32_MAX : ab_x2_high32;
}

static int32_t ref_rdbp(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)((1ll << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + ((x < 0) ? 1 : 0);
    return (x >> exponent) + ((remainder > threshold) ? 1 : 0);
}

static int32_t ref_multiply_by_quantized_multiplier(int32_t x, int32_t quantized_multiplier, int shift)
{
    const int left_shift = shift > 0 ? shift : 0;
    const int right_shift = shift > 0 ? 0 : -shift;
    /* x * (1 << left_shift) in int32, wrapping as TFLite's does in practice. */
    const int32_t shifted = (int32_t)((uint32_t)x * (uint32_t)(1u << left_shift));
    return ref_rdbp(ref_srdhm(shifted, quantized_multiplier), right_shift);
}

/* ---- Comparison --------------------------------------------------------------------------- */
static long long checked_srdhm, checked_rdbp, checked_requantize, mismatches;

static void report(const char *what, int32_t a, int32_t b, int32_t c, int32_t got, int32_t want)
{
    if (++mismatches <= 20) {
        printf("MISMATCH %s(%ld, %ld, %ld): got %ld, want %ld\n", what, (long)a, (long)b, (long)c, (long)got,
               (long)want);
    }
}

static void check_srdhm(int32_t a, int32_t b)
{
    const int32_t got = tm_saturating_rounding_doubling_high_mul(a, b), want = ref_srdhm(a, b);
    ++checked_srdhm;
    if (got != want) {
        report("srdhm", a, b, 0, got, want);
    }
}

static void check_rdbp(int32_t x, int32_t exponent)
{
    const int32_t got = tm_rounding_divide_by_pot(x, exponent), want = ref_rdbp(x, exponent);
    ++checked_rdbp;
    if (got != want) {
        report("rdbp", x, exponent, 0, got, want);
    }
}

static void check_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t got = tm_requantize(x, multiplier, shift);
    const int32_t want = ref_multiply_by_quantized_multiplier(x, multiplier, shift);
    ++checked_requantize;
    if (got != want) {
        report("requantize", x, multiplier, shift, got, want);
    }
    /* The helpers it is made of, on the same operands (softmax and ADD call them directly). */
    check_srdhm(x, multiplier);
    check_rdbp(x, shift > 0 ? 0 : (shift < -31 ? 31 : -shift));
}

static uint64_t rng_state;

static uint64_t splitmix64(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int32_t random_int32(void)
{
    return (int32_t)(uint32_t)splitmix64();
}

static int32_t random_shift(void)
{
    return (int32_t)(splitmix64() % 62u) - 31;
}

/* A multiplier as TFLite's QuantizeMultiplier makes them: [2^30, 2^31 - 1]. */
static int32_t random_multiplier(void)
{
    return (int32_t)((1u << 30) + (uint32_t)(splitmix64() % (1u << 30)));
}

static const int32_t edge_values[] = {
    INT32_MIN, INT32_MIN + 1, INT32_MIN + 2, -(1 << 30) - 1, -(1 << 30), -(1 << 30) + 1, -65536, -32768, -255,
    -129, -128, -127, -3, -2, -1, 0, 1, 2, 3, 127, 128, 255, 32767, 65536, (1 << 30) - 1, 1 << 30,
    (1 << 30) + 1, INT32_MAX - 2, INT32_MAX - 1, INT32_MAX,
};
static const int32_t edge_multipliers[] = {
    0, 1, 2, 3, 1 << 29, (1 << 30) - 1, 1 << 30, (1 << 30) + 1, 1518500250, INT32_MAX - 1, INT32_MAX,
    -1, -(1 << 30), INT32_MIN + 1, INT32_MIN,
};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

int main(int argc, char **argv)
{
    const long long random_triples = argc > 1 ? atoll(argv[1]) : 1000000;
    rng_state = 0x5EEDull;

    for (int v = 0; v < COUNT(edge_values); ++v) {
        for (int m = 0; m < COUNT(edge_multipliers); ++m) {
            for (int32_t shift = -31; shift <= 30; ++shift) {
                check_requantize(edge_values[v], edge_multipliers[m], shift);
            }
        }
        for (int w = 0; w < COUNT(edge_values); ++w) {
            check_srdhm(edge_values[v], edge_values[w]);
        }
        for (int32_t exponent = 0; exponent <= 31; ++exponent) {
            check_rdbp(edge_values[v], exponent);
        }
    }

    /* Exact .5 ties. srdhm: an odd a times 2^30 is (2k + 1) * 2^30, half-way between multiples of 2^31. */
    for (int32_t k = -1000; k <= 1000; ++k) {
        check_srdhm(2 * k + 1, 1 << 30);
        check_srdhm(1 << 30, 2 * k + 1);
    }
    /* rdbp: k * 2^e + 2^(e-1) for each e, both signs and near the ends of the range; requantize: the
     * same tie after srdhm(2x, 2^30) == x with shift -e, so the second rounding sees it. */
    for (int32_t e = 1; e <= 31; ++e) {
        for (int32_t i = 0; i < 2000; ++i) {
            const uint64_t k = i < 1000 ? (uint64_t)(int64_t)(i - 500) : splitmix64();
            const int32_t tie = (int32_t)(uint32_t)((k << e) + (1ull << (e - 1)));
            check_rdbp(tie, e);
            check_rdbp(-tie, e);
            if (tie > INT32_MIN / 2 && tie < INT32_MAX / 2) {
                check_requantize(2 * tie, 1 << 30, -e);
                check_requantize(-2 * tie, 1 << 30, -e);
            }
        }
    }

    for (long long i = 0; i < random_triples; ++i) {
        /* Full-range values with a TFLite-style multiplier. */
        check_requantize(random_int32(), random_multiplier(), random_shift());
        /* Accumulator-sized values (conv, mean) and the shifts TFLite actually uses. */
        check_requantize(random_int32() >> (splitmix64() % 32u), random_multiplier(),
                         (int32_t)(splitmix64() % 20u) - 16);
        /* ADD's inputs: an int8 minus a zero point, shifted left by 20. */
        check_requantize(((int32_t)(splitmix64() % 511u) - 255) * (1 << 20), random_multiplier(),
                         -(int32_t)(splitmix64() % 32u));
        /* Anything at all, multipliers included. */
        check_requantize(random_int32(), random_int32(), random_shift());
    }

    printf("checked srdhm %lld rdbp %lld requantize %lld mismatches %lld\n", checked_srdhm, checked_rdbp,
           checked_requantize, mismatches);
    return mismatches == 0 ? 0 : 1;
}
"""


@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found")
    out = tmp_path_factory.mktemp("fixed_point")
    src = out / "fixed_point.c"
    src.write_text(HARNESS)
    exe = out / "fixed_point"
    cmd = ["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{KERNEL_INCLUDE}", str(src), "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return exe


def run(exe: Path, random_triples: int) -> dict[str, int]:
    proc = subprocess.run([str(exe), str(random_triples)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counts = re.search(r"checked srdhm (\d+) rdbp (\d+) requantize (\d+) mismatches (\d+)", proc.stdout)
    assert counts, proc.stdout
    return dict(zip(("srdhm", "rdbp", "requantize", "mismatches"), map(int, counts.groups())))


def test_helpers_match_tflite_on_edge_cases_and_millions_of_random_triples(harness):
    counts = run(harness, RANDOM_TRIPLES)
    assert counts["mismatches"] == 0
    assert counts["requantize"] >= 4 * RANDOM_TRIPLES
    print(counts)


def test_harness_catches_a_rounding_difference(tmp_path, harness):
    """The comparison is not vacuous: rounding ties toward +inf instead of away from zero is caught."""
    header = (KERNEL_INCLUDE / "tm_support.h").read_text()
    broken = header.replace("(int32_t)((uint32_t)x >> 31)", "0")
    assert broken != header
    (tmp_path / "tm_support.h").write_text(broken)
    (tmp_path / "tm_nn.h").write_text((KERNEL_INCLUDE / "tm_nn.h").read_text())
    exe = tmp_path / "fixed_point"
    cmd = ["gcc", "-std=c99", "-O2", f"-I{tmp_path}", str(harness.parent / "fixed_point.c"), "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    proc = subprocess.run([str(exe), "1000"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "MISMATCH rdbp" in proc.stdout
