"""ADD, AVERAGE_POOL_2D and MEAN on the dsp and mve kernel paths (issue 14): bit-exact with LiteRT BUILTIN_REF.

- host: the 32-bit SMMULR/SMMLAR fixed point of dsp/tm_add_s8.c equals gemmlowp's 64-bit
  SaturatingRoundingDoublingHighMul + RoundingDivideByPOT on millions of random and all edge inputs (a C driver
  built with host gcc), and tm_add_s8_dsp equals the portable tm_add_s8 on all 65,536 input pairs for hundreds of
  random quantizations (ctypes);
- device: one model of ADDs (sizes 1, 3, 17, 1001; input scale ratios above and below 1; equal scales; fused ReLU)
  and one of pools and means (25x5 windows, 3x3 SAME with borders, 2x2 stride 2, MEAN with keep_dims over
  odd channel counts and over more than 256 positions, a window too large for the variants) on mps2-an386,
  mps2-an505 (dsp) and mps3-an547 (mve), and the dsp C checked on the host.
"""
from __future__ import annotations

import ctypes
import re
import shutil
import subprocess

import numpy as np
import pytest

from conftest import convert
from toolchain.boards import get_board
from toolchain.compiler.driver import FIRMWARE_DIR, KERNEL_INCLUDE
from toolchain.compiler.ops.add import LEFT_SHIFT, _rescales
from toolchain.compiler.ops.dsp import add as dsp_add
from toolchain.compiler.ops.mve import add as mve_add
from toolchain.compiler.quant import quantize_multiplier

pytestmark = pytest.mark.emulator

KERNELS = FIRMWARE_DIR / "kernels"


def _need_gcc():
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found")


# ---- host: the fixed-point identities, in C -------------------------------------------------------------------
DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include "dsp/tm_add_s8.c"

static uint64_t state = 0x9E3779B97F4A7C15ull;
static uint32_t next(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)(state >> 32);
}

static long mismatches;

/* SaturatingRoundingDoublingHighMul(x, m) == SMMULR(2x, m) wherever 2x fits, and the rounding divide by e of it
 * == (SMMLAR(2x, m, 2^(e-1)) + [x < 0 ? -1 : 0]) >> e, for every e in [1, 31]. */
static void check(int32_t x, int32_t m)
{
    const int32_t high = tm_saturating_rounding_doubling_high_mul(x, m);
    if (high != tm_smmulr(x * 2, m)) {
        if (++mismatches < 5) printf("srdhm x=%d m=%d\n", x, m);
    }
    for (int32_t e = 1; e <= 31; ++e) {
        const int32_t want = tm_rounding_divide_by_pot(high, e);
        const int32_t got = (tm_smmlar(x * 2, m, (int32_t)(1u << (e - 1))) + ((x * 2) >> 31)) >> e;
        if (want != got) {
            if (++mismatches < 5) printf("rdbp x=%d m=%d e=%d\n", x, m, e);
        }
    }
}

int main(int argc, char **argv)
{
    const long n = argc > 1 ? atol(argv[1]) : 1000000;
    /* The kernel's domain: |x| < 2^30 (so 2x fits), m in [2^30, 2^31) (QuantizeMultiplier's range) or 0. */
    const int32_t xs[] = {0, 1, -1, 2, -2, 3, -3, (1 << 29), -(1 << 29), (1 << 30) - 1, -(1 << 30),
                          (1 << 30) - 2, -(1 << 30) + 1, 255 << 20, -(255 << 20), 255 << 19, -(255 << 19),
                          (1 << 20), -(1 << 20), (1 << 21) - 1, -(1 << 21) + 1};
    const int32_t ms[] = {1 << 30, (1 << 30) + 1, 0x7FFFFFFF, 0x7FFFFFFE, 0x60000000, 0x5A827999, 0};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; ++i) {
        for (size_t j = 0; j < sizeof ms / sizeof ms[0]; ++j) {
            check(xs[i], ms[j]);
        }
    }
    /* Ties: x * m a multiple of 2^30 +- 1 around every rounding boundary. */
    for (int32_t k = -4096; k <= 4096; ++k) {
        check(k * (1 << 17), 1 << 30);
        check(k * (1 << 17) + 1, 1 << 30);
        check(k * (1 << 17) - 1, 1 << 30);
        check(k * 3, 0x40000001);
    }
    for (long i = 0; i < n; ++i) {
        const int32_t m = (int32_t)((next() >> 1) | (1u << 30));
        int32_t x = (int32_t)next() >> 1;             /* any |x| < 2^30 */
        if (i & 1) x >>= (next() & 31);                /* and small ones, where the rounding decides */
        check(x, m);
    }
    printf("%ld\n", mismatches);
    return mismatches != 0;
}
"""


def test_smmulr_fixed_point_equals_64_bit_reference(tmp_path):
    _need_gcc()
    src = tmp_path / "driver.c"
    src.write_text(DRIVER)
    exe = tmp_path / "driver"
    cmd = ["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{KERNEL_INCLUDE}", f"-I{KERNELS}",
           f"-I{KERNELS / 'dsp'}", str(src), "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    run = subprocess.run([str(exe), "2000000"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip().endswith("0"), run.stdout


# ---- host: the whole dsp ADD kernel against the portable one ------------------------------------------------------
class Dims(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


class Activation(ctypes.Structure):
    _fields_ = [("min", ctypes.c_int32), ("max", ctypes.c_int32)]


class RefParams(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int32) for name in (
        "input1_offset", "input2_offset", "output_offset", "left_shift", "input1_multiplier", "input1_shift",
        "input2_multiplier", "input2_shift", "output_multiplier", "output_shift")] + [("activation", Activation)]


class DspParams(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int32) for name in (
        "input1_offset", "input2_offset", "input2_multiplier", "input2_rounding", "input2_shift",
        "output_multiplier", "output_rounding", "output_shift")] + [("activation", Activation)]


@pytest.fixture(scope="module")
def add_lib(tmp_path_factory):
    _need_gcc()
    lib = tmp_path_factory.mktemp("add") / "libadd.so"
    sources = [KERNELS / "ref" / "tm_add_s8.c", KERNELS / "ref" / "tm_support.c", KERNELS / "dsp" / "tm_add_s8.c"]
    cmd = ["gcc", "-std=c99", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror", f"-I{KERNEL_INCLUDE}",
           *map(str, sources), "-o", str(lib)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return ctypes.CDLL(str(lib))


class _T:
    def __init__(self, scale):
        self.scale = scale


def _random_quantizations(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        sa = float(np.float32(10 ** rng.uniform(-3, 0)))
        sb = float(np.float32(sa * 10 ** rng.uniform(-3, 3)))  # ratios far below and above 1
        so = float(np.float32(max(sa, sb) * 10 ** rng.uniform(-0.5, 1.5)))
        zps = tuple(int(z) for z in rng.integers(-128, 128, 3))
        act = [(-128, 127), (zps[2], 127), (max(zps[2], -128), min(zps[2] + 60, 127))][int(rng.integers(0, 3))]
        yield (sa, sb, so), zps, act
    yield (0.05, 0.05, 0.1), (3, -7, 0), (-128, 127)  # equal input scales
    yield (0.05, 0.05, 0.07), (-128, 127, -128), (-128, 127)


def test_dsp_add_equals_portable_add_on_every_input_pair(add_lib):
    grid = np.arange(-128, 128, dtype=np.int8)
    a = np.ascontiguousarray(np.repeat(grid, 256))
    b = np.ascontiguousarray(np.tile(grid, 256))
    dims = Dims(1, 1, 1, a.size)
    ptr = ctypes.POINTER(ctypes.c_int8)
    accepted = 0
    for k, (scales, zps, act) in enumerate(_random_quantizations(300)):
        (m1, s1), (m2, s2), (mo, so) = (quantize_multiplier(r) for r in _rescales(*(_T(s) for s in scales)))
        if so > 0:
            continue  # the compiler refuses such an ADD (check_rescale)
        ref = RefParams(-zps[0], -zps[1], zps[2], LEFT_SHIFT, m1, s1, m2, s2, mo, so, Activation(*act))
        want = np.zeros_like(a)
        assert add_lib.tm_add_s8(None, ctypes.byref(ref), ctypes.byref(dims), a.ctypes.data_as(ptr),
                                 ctypes.byref(dims), b.ctypes.data_as(ptr), ctypes.byref(dims),
                                 want.ctypes.data_as(ptr)) == 0
        fold = dsp_add._fold(scales, zps, act)
        mve_ok = fold is not None and mve_add._exact(fold)
        if fold is None:
            continue
        accepted += 1
        assert mve_ok, (scales, zps, act)
        p = dsp_add.kernel_params(fold)
        dsp = DspParams(*(p[f] for f, _ in DspParams._fields_[:-1]), Activation(*act))
        first, second = (a, b) if fold.big == 0 else (b, a)
        got = np.zeros_like(a)
        assert add_lib.tm_add_s8_dsp(None, ctypes.byref(dsp), ctypes.byref(dims), first.ctypes.data_as(ptr),
                                     ctypes.byref(dims), second.ctypes.data_as(ptr), ctypes.byref(dims),
                                     got.ctypes.data_as(ptr)) == 0
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, f"case {k} {scales} {zps} {act}: a={a[bad[:5]]} b={b[bad[:5]]} " \
                              f"got {got[bad[:5]]} want {want[bad[:5]]}"
    assert accepted >= 250  # the variant covers practically every quantization


# ---- device: small Keras models with many layers each -----------------------------------------------------------
def add_model(keras):
    keras.utils.set_random_seed(3)
    inputs = keras.Input((16,), name="input")
    outs = []
    for n, (sa, sb), act in ((1, (0.5, 0.5), None), (3, (0.05, 2.0), "relu"), (17, (3.0, 0.02), None),
                             (1001, (0.3, 0.1), "relu")):
        a = keras.layers.Dense(n, kernel_initializer=keras.initializers.RandomUniform(-sa, sa))(inputs)
        b = keras.layers.Dense(n, kernel_initializer=keras.initializers.RandomUniform(-sb, sb))(inputs)
        x = keras.layers.Add()([a, b])
        if act:
            x = keras.layers.Activation(act)(x)
        outs.append(x)
    outs.append(keras.layers.Add()([outs[2], outs[2]]))  # equal input scales
    return keras.Model(inputs, keras.layers.Concatenate()(outs), name="adds")


def pool_model(keras):
    keras.utils.set_random_seed(4)
    inputs = keras.Input((25, 15, 19), name="input")
    wide = keras.layers.Conv2D(64, 1, name="to64")(inputs)
    narrow = keras.layers.Conv2D(7, 1, activation="relu", name="to7")(inputs)
    layers = keras.layers
    outs = [
        layers.AveragePooling2D((25, 5), name="kws_pool")(wide),                      # 125 per window, 64 channels
        layers.AveragePooling2D((25, 5), name="pool19")(inputs),                     # 19 channels: 8 + 8 + 3
        layers.AveragePooling2D(3, strides=1, padding="same", name="same3")(inputs),  # border counts 4, 6, 9
        layers.AveragePooling2D(3, strides=2, padding="same", name="same3s2")(narrow),
        layers.AveragePooling2D(2, strides=2, name="pool2")(narrow),
        layers.AveragePooling2D((25, 15), name="too_large")(narrow),                 # 375 > 256: portable
        layers.GlobalAveragePooling2D(keepdims=True, name="mean19")(inputs),         # 375 positions > 256
        layers.GlobalAveragePooling2D(keepdims=True, name="mean7")(narrow),
        layers.GlobalAveragePooling2D(name="mean64")(wide),
    ]
    return keras.Model(inputs, layers.Concatenate()([layers.Flatten()(o) for o in outs]), name="pools")


@pytest.fixture(scope="module")
def models(tmp_path_factory, keras):
    from toolchain.compiler.frontend import load_tflite

    out = tmp_path_factory.mktemp("models")
    built = {}
    for name, builder in (("adds", add_model), ("pools", pool_model)):
        model = builder(keras)
        rep = np.random.default_rng(0).uniform(-1, 1, (32, *model.input_shape[1:])).astype(np.float32)
        built[name] = convert(model, rep, out / f"{name}.tflite")
    kinds = {op.kind for op in load_tflite(built["pools"]).ops}
    assert {"AVERAGE_POOL_2D", "MEAN"} <= kinds, kinds
    return built


EXPECTED = {  # calls in model.c: (variant, count), (portable kernel, count)
    "adds": {"tm_add_s8_{path}(": 5, "tm_add_s8(": 0},
    "pools": {"tm_avg_pool2d_s8_{path}(": 5, "tm_avg_pool2d_s8(": 1, "tm_mean_s8_{path}(": 3, "tm_mean_s8(": 0},
}


@pytest.mark.parametrize("board,path", [("mps2-an386", "dsp"), ("mps2-an505", "dsp"), ("mps3-an547", "mve")])
@pytest.mark.parametrize("name", ["adds", "pools"])
def test_bit_exact_on_device(models, name, board, path, tmp_path):
    from toolchain.pipeline.api import deploy

    result = deploy(models[name], get_board(board), tmp_path, kernels=path, samples=2, bands="none",
                    progress=lambda _: None)
    assert result.bit_exact, result.mismatches[:5]
    model_c = (tmp_path / "c" / "model.c").read_text()
    for call, count in EXPECTED[name].items():
        call = call.format(path=path)
        assert len(re.findall(re.escape(call), model_c)) == count, call


@pytest.mark.parametrize("name", ["adds", "pools"])
def test_dsp_c_is_bit_exact_on_the_host(models, name, tmp_path):
    from toolchain.compiler import compile_model
    from toolchain.verify.check import check_against_reference

    _need_gcc()
    compile_model(models[name], tmp_path, target="dsp", bands="none")
    assert "_dsp(" in (tmp_path / "model.c").read_text()
    report = check_against_reference(models[name], tmp_path, samples=4, seed=1)
    assert report.ok, report.summary()
