"""FULLY_CONNECTED's integer requantization against the double formula it replaces (LiteRT's reference
FC: round((double)acc * scale), half away from zero, saturated to int32), bit-exact over millions of
(acc, scale) pairs: random, near ties at the final rounding and at the double's 53-bit rounding, exact
ties, and the int32 extremes. The kernel's static requantize() is compiled into a host harness by
including its C file."""
from __future__ import annotations

import ctypes
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest

from toolchain.compiler.driver import FIRMWARE_DIR, KERNEL_INCLUDE
from toolchain.compiler.ops.fully_connected import check_scales, decompose_scale

REF = FIRMWARE_DIR / "kernels" / "ref"
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
# Scales the validator lets through: float32 normals s_in * s_w / s_out, each in [2^-126, 2^128).
SCALE_LOG2 = (-380.0, 382.0)

HARNESS = r"""
#include <math.h>
#include "tm_fully_connected_s8.c"

/* The formula the kernel replaced (LiteRT's reference FC). */
static int32_t double_requantize(int32_t acc, double scale)
{
    const double r = round((double)acc * scale);
    if (!(r >= (double)INT32_MIN)) {
        return INT32_MIN;
    }
    if (r > (double)INT32_MAX) {
        return INT32_MAX;
    }
    return (int32_t)r;
}

void both(int64_t n, const int32_t *acc, const double *scale, const uint32_t *hi, const uint32_t *lo,
          const int32_t *exponent, int32_t *expected, int32_t *got)
{
    for (int64_t i = 0; i < n; ++i) {
        expected[i] = double_requantize(acc[i], scale[i]);
        got[i] = requantize(acc[i], hi[i], lo[i], exponent[i]);
    }
}

/* One 1x1 FC call with the given mantissa/exponent: its status. */
int32_t call_status(uint32_t hi, uint32_t lo, int32_t exponent)
{
    const tm_fully_connected_params params = { .activation = { .min = -128, .max = 127 } };
    const tm_fully_connected_quant quant = { .mantissa_hi = &hi, .mantissa_lo = &lo, .exponent = &exponent };
    const tm_dims dims = { .n = 1, .h = 1, .w = 1, .c = 1 };
    const int8_t in = 1, filter = 1;
    int8_t out;
    return tm_fully_connected_s8(NULL, &params, &quant, &dims, &in, &dims, &filter, NULL, &dims, &out);
}
"""


@pytest.fixture(scope="module", params=["clz", "portable"])
def harness(request, tmp_path_factory):
    """Built twice: with __builtin_clz, and without compiler builtins (TM_NO_BUILTINS)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found")
    d = tmp_path_factory.mktemp("fc_requant")
    (d / "harness.c").write_text(HARNESS)
    lib = d / "libharness.so"
    cmd = ["gcc", "-std=c99", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off",
           f"-I{KERNEL_INCLUDE}", f"-I{REF}", str(d / "harness.c"), "-o", str(lib), "-lm"]
    if request.param == "portable":
        cmd.insert(1, "-DTM_NO_BUILTINS")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    so = ctypes.CDLL(str(lib))
    so.call_status.restype = ctypes.c_int32
    so.call_status.argtypes = [ctypes.c_uint32, ctypes.c_uint32, ctypes.c_int32]
    return so


def decompose(scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """decompose_scale, vectorised: (m, e) with scale == m * 2^e, m in [2^52, 2^53)."""
    fraction, exponent = np.frexp(scales)
    return (fraction * 2.0 ** 53).astype(np.int64), exponent.astype(np.int64) - 53


def compare(so, acc: np.ndarray, scale: np.ndarray, m: np.ndarray | None = None,
            e: np.ndarray | None = None) -> int:
    """Runs both formulas; asserts zero differences, printing the first ones by position."""
    acc = np.ascontiguousarray(acc, np.int32)
    scale = np.ascontiguousarray(scale, np.float64)
    if m is None:
        m, e = decompose(scale)
    hi = np.ascontiguousarray(m >> 32, np.uint32)
    lo = np.ascontiguousarray(m & 0xFFFFFFFF, np.uint32)
    e = np.ascontiguousarray(e, np.int32)
    expected, got = np.empty_like(acc), np.empty_like(acc)
    ptr = ctypes.c_void_p
    so.both(ctypes.c_int64(acc.size), *(ptr(a.ctypes.data) for a in (acc, scale, hi, lo, e, expected, got)))
    bad = np.flatnonzero(expected != got)
    detail = "\n".join(f"  [{i}] acc={acc[i]} scale={scale[i].hex()} expected {expected[i]} got {got[i]}"
                       for i in bad[:10])
    assert bad.size == 0, f"{bad.size} of {acc.size} differ:\n{detail}"
    return acc.size


def log_uniform(rng, lo: float, hi: float, n: int) -> np.ndarray:
    return np.exp2(rng.uniform(lo, hi, n))


def signed_accs(rng, n: int) -> np.ndarray:
    """Full int32 range, small values, and log-uniform magnitudes of either sign."""
    full = rng.integers(INT32_MIN, INT32_MAX, n, endpoint=True)
    small = rng.integers(-2000, 2000, n, endpoint=True)
    mags = np.minimum(np.exp2(rng.uniform(0, 31, n)).astype(np.int64), INT32_MAX)
    logs = mags * rng.choice([-1, 1], n)
    pick = rng.random(n)
    return np.where(pick < 0.4, full, np.where(pick < 0.6, small, logs))


def nudge(values: np.ndarray, ulps: np.ndarray) -> np.ndarray:
    """Positive doubles moved by whole ulps (their bit patterns are ordered like their values)."""
    return (values.view(np.int64) + ulps).view(np.float64)


def test_random_pairs(harness):
    rng = np.random.default_rng(0)
    n = 1_000_000
    count = compare(harness, signed_accs(rng, n), log_uniform(rng, *SCALE_LOG2, n))  # the whole accepted range
    count += compare(harness, signed_accs(rng, n), log_uniform(rng, -45, 6, n))  # results inside int32
    assert count == 2 * n


def test_near_final_ties(harness):
    """acc * scale within a few ulps of k + 1/2, k small, large and at the int32 saturation bounds."""
    rng = np.random.default_rng(1)
    n = 1_000_000
    acc = signed_accs(rng, n)
    acc[acc == 0] = 1
    k = np.floor(np.exp2(rng.uniform(-1, 31, n)))
    k[: n // 10] = rng.choice([2.0 ** 31 - 1, 2.0 ** 31, 2.0 ** 31 - 2], n // 10)
    scale = (k + 0.5) / np.abs(acc.astype(np.float64))
    scale = nudge(scale, rng.integers(-4, 4, n, endpoint=True))
    assert compare(harness, acc, scale) == n


def test_exact_ties(harness):
    """scale = 2^-k with acc = (j + 1/2) * 2^k, and scale 0.5, 0.25 against every small acc."""
    rng = np.random.default_rng(2)
    n = 200_000
    k = rng.integers(1, 31, n)
    j = rng.integers(0, 1 << 31, n) >> k
    acc = np.clip((j << k) + (1 << (k - 1)), 1, INT32_MAX) * rng.choice([-1, 1], n)
    count = compare(harness, acc, np.exp2(-k.astype(np.float64)))
    small = np.arange(-5000, 5001)
    for s in (0.5, 0.25, 0.125, 1.0, 1.5, 2.0 ** -31, 2.0 ** -32):
        count += compare(harness, small, np.full(small.size, s))
    assert count == n + 7 * small.size


def test_53_bit_ties(harness):
    """acc * m exactly at (or one off) the halfway point of the double's rounding to 53 bits, both
    parities of the kept bits, scaled so the result lands in int32. (Rounding these ties up instead of
    to even gives the same results, as the final rounding drops at least 22 more bits; rounding them
    down does not.)"""
    rng = np.random.default_rng(3)
    accs, ms, es = [], [], []
    while len(accs) < 100_000:
        a = int(rng.integers(1, 1 << 31)) | 1
        m = int(rng.integers(1 << 52, 1 << 53))
        dropped = (a * m).bit_length() - 53
        if dropped == 0:
            continue
        target = (1 << (dropped - 1)) + int(rng.integers(-1, 2))
        # acc * m = target (mod 2^dropped): only m's low bits change, so its length barely moves
        low = (target * pow(a, -1, 1 << dropped)) % (1 << dropped)
        m = (m >> dropped << dropped) | low
        dropped_now = (a * m).bit_length() - 53
        if not (1 << 52) <= m < (1 << 53) or dropped_now != dropped:
            continue
        shift = int(rng.integers(20, 57))
        accs.append(a * int(rng.choice([-1, 1])))
        ms.append(m)
        es.append(-dropped - shift)
    m, e = np.array(ms, np.int64), np.array(es, np.int64)
    scale = np.ldexp(m.astype(np.float64), e)
    assert compare(harness, np.array(accs), scale, m, e) == len(accs)


def test_extremes(harness):
    accs = np.array([INT32_MIN, INT32_MIN + 1, -2, -1, 0, 1, 2, INT32_MAX - 1, INT32_MAX])
    scales = np.array([2.0 ** SCALE_LOG2[0], 2.0 ** SCALE_LOG2[1], sys.float_info.min, sys.float_info.max,
                       0.5, 0.25, 1.0, 2.0, 2.0 ** -31, 2.0 ** -32, 2.0 ** -30, 2.0 ** -53, 2.0 ** -54,
                       2.0 ** -55, math.nextafter(1.0, 0.0), math.nextafter(1.0, 2.0),
                       0.5 / INT32_MAX, math.nextafter(0.5 / INT32_MAX, 1.0), math.nextafter(0.5 / INT32_MAX, 0.0),
                       (2.0 ** 31 - 0.5) / INT32_MAX, math.nextafter((2.0 ** 31 - 0.5) / INT32_MAX, 0.0)])
    a, s = np.meshgrid(accs, scales)
    assert compare(harness, a.ravel(), s.ravel()) == accs.size * scales.size


def test_compiler_decomposition_is_exact():
    rng = np.random.default_rng(4)
    scales = np.concatenate([log_uniform(rng, *SCALE_LOG2, 20_000), [sys.float_info.min, sys.float_info.max]])
    vector_m, vector_e = decompose(scales)
    for s, vm, ve in zip(scales.tolist(), vector_m.tolist(), vector_e.tolist()):
        m, e = decompose_scale(s)
        assert (m, e) == (vm, ve) and (1 << 52) <= m < (1 << 53) and math.ldexp(m, e) == s, s.hex()


@pytest.mark.parametrize("scale", [0.0, -1.0, math.inf, math.nan, sys.float_info.min / 2, 5e-324])
def test_compiler_refuses_scales_it_cannot_emulate(scale):
    assert check_scales([1.0, scale]) and "normal double" in check_scales([scale])[0]
    assert check_scales([sys.float_info.min, 1.0, sys.float_info.max]) == []


@pytest.mark.parametrize("hi, exponent, ok", [
    (1 << 20, -60, True), ((1 << 21) - 1, 971, True), (1 << 20, -1074, True),
    ((1 << 20) - 1, -60, False), (1 << 21, -60, False), (1 << 20, -1075, False), (1 << 20, 972, False)])
def test_kernel_refuses_unnormalised_scales(harness, hi, exponent, ok):
    assert (harness.call_status(hi, 0, exponent) == 0) == ok
