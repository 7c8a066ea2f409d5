"""The dsp path's CONV_2D kernels (firmware/kernels/dsp/tm_conv2d_s8.c, ops/dsp/conv2d.py): bit-exact with
LiteRT BUILTIN_REF on the host and on the Cortex-M4 (mps2-an386) and M33 (mps2-an505) in QEMU, over odd channel
counts, 1-3 input channels, SAME padding on every side, stride 2, dilation 2, ReLU/ReLU6, per-tensor and
per-channel weights and int8 extremes; the variants are really called, their scratch matches the C; each
requantization form (fast with no / lower / both clamps, general) matches TFLite's integer math."""
from __future__ import annotations

import ctypes
import re
import shutil
import subprocess

import numpy as np
import pytest

import op_models as om
from conftest import convert
from toolchain.boards import get_board
from toolchain.compiler.driver import FIRMWARE_DIR, KERNEL_INCLUDE, compile_model
from toolchain.compiler.frontend import load_tflite
from toolchain.compiler.ops.dsp.conv2d import channel_table, fold_bias, pack_filter
from toolchain.compiler.ops.variants import variant_for
from toolchain.compiler.passes import optimize
from toolchain.pipeline.api import deploy
from toolchain.verify.check import check_against_reference

pytestmark = pytest.mark.emulator

DSP = FIRMWARE_DIR / "kernels" / "dsp"


def _conv(keras, filters, kernel, seed, **kwargs):
    init = keras.initializers.RandomUniform(-0.5, 0.5, seed=seed)
    return keras.layers.Conv2D(filters, kernel, kernel_initializer=init,
                               bias_initializer=keras.initializers.RandomUniform(-0.3, 0.3, seed=seed + 100), **kwargs)


def _one_channel_model(keras):
    """1 input channel (a KWS-like 10x4 stride-2 first layer), then 1-3 input channels, odd counts, every
    SAME padding side (even and odd kernels), dilation 2, 1x1 with and without stride, ReLU / ReLU6."""
    keras.utils.set_random_seed(3)
    x = inp = keras.Input((17, 13, 1))
    x = _conv(keras, 6, (10, 4), 1, strides=2, padding="same")(x)               # (9, 7, 6): 63 pixels, odd
    x = _conv(keras, 5, 1, 2, activation="relu")(x)                              # 1x1, depth 6 (not 4k)
    x = _conv(keras, 3, 3, 3, padding="same", activation="relu6")(x)             # depth 45
    x = _conv(keras, 7, 3, 4, padding="same")(x)                                 # 3 input channels
    x = om._dilated_layer(keras, "conv", 2, (2, 3), 1, "same", 2, None)(x)       # dilation 2, even kernel
    x = _conv(keras, 9, 4, 6, strides=2, padding="same", activation="relu")(x)  # 2 input channels, (5, 4)
    x = _conv(keras, 1, (3, 2), 7, padding="valid")(x)                           # one output channel, (3, 3)
    x = _conv(keras, 4, 1, 8, strides=2)(x)                                      # 1x1 stride 2, depth 1
    return keras.Model(inp, x)


def _three_channel_model(keras):
    """IC/VWW-like: 3 input channels, stride-2 VALID and SAME, deeper 1x1 layers with odd counts."""
    keras.utils.set_random_seed(4)
    x = inp = keras.Input((15, 15, 3))
    x = _conv(keras, 8, 3, 11, strides=2, padding="valid", activation="relu6")(x)  # (7, 7, 8)
    x = _conv(keras, 17, 1, 12, activation="relu")(x)                              # 49 pixels, 17 channels
    x = _conv(keras, 33, 1, 13)(x)                                                 # depth 17
    x = _conv(keras, 16, 3, 14, padding="same", activation="relu")(x)              # depth 297
    x = _conv(keras, 12, 5, 15, strides=2, padding="same")(x)                      # (4, 4), pad 1/2
    return keras.Model(inp, x)


MODELS = {"one_channel": (_one_channel_model, True), "three_channel": (_three_channel_model, False)}


@pytest.fixture(scope="module")
def tflites(tmp_path_factory, keras):
    out = {}
    for name, (build, per_channel) in MODELS.items():
        model = build(keras)
        rep = np.random.default_rng(0).uniform(-1, 1, (16, *model.input_shape[1:])).astype(np.float32)
        out[name] = convert(model, rep, tmp_path_factory.mktemp(name) / f"{name}.tflite", per_channel=per_channel)
    return out


def _conv_ops(tflite):
    g = optimize(load_tflite(tflite))
    return g, [op for op in g.ops if op.kind == "CONV_2D"]


@pytest.mark.parametrize("name", list(MODELS))
def test_host_check_with_extremes(tflites, tmp_path, name):
    """Host build of the dsp C (tm_simd.h's C equivalents) against LiteRT, inputs at -128 and 127 included."""
    tflite = tflites[name]
    compile_model(tflite, tmp_path, target="dsp", bands="none")
    g, _ = _conv_ops(tflite)
    shape = g.tensors[g.inputs[0]].shape
    rng = np.random.default_rng(1)
    inputs = [[np.full(shape, -128, np.int8)], [np.full(shape, 127, np.int8)],
              [rng.choice(np.array([-128, 127], np.int8), shape)]] + \
             [[rng.integers(-128, 128, shape, dtype=np.int8)] for _ in range(3)]
    report = check_against_reference(tflite, tmp_path, inputs=inputs)
    assert report.ok, report.summary()
    calls = re.findall(r"tm_conv2d_s8_dsp_(1x1|im2col)\(", (tmp_path / "model.c").read_text())
    assert "1x1" in calls and "im2col" in calls
    assert "tm_conv2d_s8(" not in (tmp_path / "model.c").read_text()


@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an505"])
@pytest.mark.parametrize("name", list(MODELS))
def test_device_bit_exact(tflites, tmp_path, board, name):
    if shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("qemu-system-arm / arm-none-eabi-gcc not found")
    result = deploy(tflites[name], get_board(board), tmp_path, kernels="dsp", samples=2, bands="none",
                    progress=lambda _: None)
    assert result.bit_exact
    model_c = (tmp_path / "c" / "model.c").read_text()
    _, ops = _conv_ops(tflites[name])
    assert model_c.count("tm_conv2d_s8_dsp_") == len(ops)


@pytest.fixture(scope="module")
def dsp_lib(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found")
    lib = tmp_path_factory.mktemp("dsp") / "libtm_conv2d_dsp.so"
    cmd = ["gcc", "-std=c99", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror", f"-I{KERNEL_INCLUDE}",
           f"-I{DSP}", str(DSP / "tm_conv2d_s8.c"), "-o", str(lib)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return ctypes.CDLL(str(lib))


class Dims(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


def test_scratch_matches_c(tflites, dsp_lib):
    for tflite in tflites.values():
        g, ops = _conv_ops(tflite)
        for op in ops:
            v = variant_for(op, g, "dsp")
            assert v is not None and v.path == "dsp"
            fn = getattr(dsp_lib, f"{v.kernel_for(op, g)}_get_buffer_size")
            fn.restype = ctypes.c_int32
            dims = [g.tensors[t].nhwc() for t in (op.inputs[0], op.inputs[1], op.outputs[0])]
            assert fn(*(ctypes.byref(Dims(*d)) for d in dims)) == v.scratch_bytes(op, g)


def test_refuses_huge_windows(tmp_path, keras):
    """A window deeper than the scratch limit falls back to the portable kernel (and still matches)."""
    keras.utils.set_random_seed(5)
    x = inp = keras.Input((3, 3, 800))
    x = keras.layers.Conv2D(2, 3, padding="same")(x)
    tflite = convert(keras.Model(inp, x), np.random.default_rng(0).uniform(-1, 1, (4, 3, 3, 800)).astype(np.float32),
                     tmp_path / "deep.tflite")
    g, ops = _conv_ops(tflite)
    assert variant_for(ops[0], g, "dsp") is None
    compile_model(tflite, tmp_path / "c", target="dsp", bands="none")
    assert "tm_conv2d_s8(" in (tmp_path / "c" / "model.c").read_text()
    assert check_against_reference(tflite, tmp_path / "c", samples=2).ok


def test_packing_and_folding():
    """The packed layout of tm_conv2d_s8.h and the wrapping folded bias, on int8 extremes."""
    w = np.array([[-128, 127, 1, 2, 3], [4, 5, 6, 7, -128], [127, 127, 127, 127, 127]], np.int8).reshape(3, 1, 1, 5)
    packed = pack_filter(w).reshape(2, 2, 2, 4)  # channel pairs, groups, channel in the pair, 4 values
    assert packed[0, 0, 0].tolist() == [-128, 127, 1, 2] and packed[0, 1, 1].tolist() == [-128, 0, 0, 0]
    assert packed[1, 0, 0].tolist() == [127] * 4 and not packed[1, :, 1].any()
    folded = fold_bias(w, np.array([2**31 - 1, 0, -5], np.int64), 128)
    wrap = lambda v: (v + 2**31) % 2**32 - 2**31  # noqa: E731
    assert folded.tolist() == [wrap(2**31 - 1 + 5 * 128), (4 + 5 + 6 + 7 - 128) * 128, -5 + 127 * 5 * 128, 0]


class Tile(ctypes.Structure):
    _fields_ = [("h", ctypes.c_int32), ("w", ctypes.c_int32)]


class ConvParams(ctypes.Structure):
    _fields_ = [("input_offset", ctypes.c_int32), ("output_offset", ctypes.c_int32), ("stride", Tile),
                ("padding", Tile), ("dilation", Tile), ("act_min", ctypes.c_int32), ("act_max", ctypes.c_int32)]


class QuantParams(ctypes.Structure):
    _fields_ = [("multiplier", ctypes.POINTER(ctypes.c_int32)), ("shift", ctypes.POINTER(ctypes.c_int32)),
                ("per_channel", ctypes.c_int32)]


class Context(ctypes.Structure):
    _fields_ = [("buf", ctypes.c_void_p), ("size", ctypes.c_int32)]


def _requantize(x: int, m: int, shift: int) -> int:
    """TFLite MultiplyByQuantizedMultiplier: SaturatingRoundingDoublingHighMul then RoundingDivideByPOT."""
    x = ((x << max(shift, 0)) + 2**31) % 2**32 - 2**31
    ab = x * m
    q = ab + (2**30 if ab >= 0 else 1 - 2**30)
    s = abs(q) >> 31 if q >= 0 else -(abs(q) >> 31)
    e = max(-shift, 0)
    mask = (1 << e) - 1
    return (s >> e) + ((s & mask) > (mask >> 1) + (s < 0))


@pytest.mark.parametrize("case", ["fast_none", "fast_relu", "fast_both", "general"])
def test_rescale_forms(dsp_lib, case):
    """Each requantization form and activation clamp of the 1x1 kernel against TFLite's integer math, with
    accumulators near the int32 limits and the extreme shifts of each form (the fast one folds the output
    offset into its rounding word for shifts -2..-22; the rest take the general path)."""
    rng = np.random.default_rng(["fast_none", "fast_relu", "fast_both", "general"].index(case))
    cin, cout, h, w = 5, 7, 3, 3
    x = rng.integers(-128, 128, (1, h, w, cin), dtype=np.int8)
    x[0, 0, 0] = -128
    wt = rng.integers(-128, 128, (cout, 1, 1, cin), dtype=np.int8)
    wt[0] = 127
    if case == "general":
        shifts = [-1, 0, 1, -23, -31, -2, -22]
        bias = rng.integers(-2**20, 2**20, cout)
    else:
        shifts = [-2, -22, -3, -12, -22, -2, -7]
        bias = np.array([2**31 - 2**18, -2**31 + 2**18, 2**30, -2**30, 0, 2**31 - 2**18, -2**31 + 2**18])
    mult = [2**31 - 1, 2**30, int(rng.integers(2**30, 2**31)), 2**31 - 1, 2**31 - 1, 2**30, 2**31 - 1]
    out_offset = {"fast_none": -128, "fast_relu": -5, "fast_both": 127, "general": 17}[case]
    act = {"fast_none": (-128, 127), "fast_relu": (-5, 127), "fast_both": (-20, 40), "general": (-100, 90)}[case]
    folded = np.concatenate([bias, [0]])
    table = channel_table(folded, mult, shifts, out_offset)
    m_pad, s_pad = mult + [0], shifts + shifts[-1:]
    i32 = lambda v: (ctypes.c_int32 * len(v))(*[int(e) for e in v])  # noqa: E731
    mults, shs, tab = i32(m_pad), i32(s_pad), i32(table)
    quant = QuantParams(ctypes.cast(mults, ctypes.POINTER(ctypes.c_int32)),
                        ctypes.cast(shs, ctypes.POINTER(ctypes.c_int32)), 1)
    params = ConvParams(0, out_offset, Tile(1, 1), Tile(0, 0), Tile(1, 1), *act)
    dims = [Dims(1, h, w, cin), Dims(cout, 1, 1, cin), Dims(1, h, w, cout)]
    dsp_lib.tm_conv2d_s8_dsp_1x1_get_buffer_size.restype = ctypes.c_int32
    size = dsp_lib.tm_conv2d_s8_dsp_1x1_get_buffer_size(*(ctypes.byref(d) for d in dims))
    scratch = (ctypes.c_uint32 * (size // 4))()
    ctx = Context(ctypes.cast(scratch, ctypes.c_void_p), size)
    packed = pack_filter(wt)
    out = np.zeros((1, h, w, cout), np.int8)
    status = dsp_lib.tm_conv2d_s8_dsp_1x1(
        ctypes.byref(ctx), ctypes.byref(params), ctypes.byref(quant), ctypes.byref(dims[0]),
        x.ctypes.data_as(ctypes.c_void_p), ctypes.byref(dims[1]), packed.ctypes.data_as(ctypes.c_void_p), tab,
        ctypes.byref(dims[2]), out.ctypes.data_as(ctypes.c_void_p))
    assert status == 0
    acc = np.einsum("hwc,oc->hwo", x[0].astype(np.int64), wt[:, 0, 0].astype(np.int64)) + bias
    expected = np.empty_like(out)
    for (yy, xx, c), a in np.ndenumerate(acc):
        a = (int(a) + 2**31) % 2**32 - 2**31
        v = max(-128, min(127, _requantize(a, mult[c], shifts[c]) + out_offset))
        expected[0, yy, xx, c] = max(act[0], min(act[1], v))
    np.testing.assert_array_equal(out, expected)
