"""The mve (Cortex-M55 Helium) DEPTHWISE_CONV_2D variants, bit-exact with LiteRT BUILTIN_REF on mps3-an547.

One model holds many depthwise layers (channel counts 1, 3, 5, 12, 16, 17, 40; SAME/VALID on odd and even sizes;
stride 1, 2, (1, 2) and (2, 1); 3x3, 5x5 and 2x3 windows; depth multipliers 3, 5, 8, 12, 16; dilation 2;
ReLU/ReLU6; per-channel and per-tensor weights), so one firmware build covers them; the inputs include int8
extremes. The layers cover all three variants: pixel lanes (`_3x3_s1`, `_3x3_s2`, generic) and channel lanes (`_cl`, the
narrow layers with a multiple of 4 channels, 12 channels exercising the fill's 8-channel tail; in bands of
1 or 2 output rows, a shorter last band, and one band of the whole input).
A second model holds 5x5 and 7x7 windows (`_cl_large`: chunks of 16 taps; rows wider than 32 pixels too; stride 1
and 2, SAME padding on every side, one band or channel groups), and odd channel counts, which the pixel lanes take.
"""
from __future__ import annotations

import ctypes
import re
import shutil
import subprocess

import numpy as np
import pytest

import op_models as om
import tflite_edit as te
from conftest import convert
from toolchain.boards import get_board
from toolchain.compiler.driver import FIRMWARE_DIR, KERNEL_INCLUDE
from toolchain.compiler.driver import plan_with_variants
from toolchain.compiler.frontend import load_tflite
from toolchain.compiler.ops.base import per_channel_multipliers
from toolchain.compiler.ops.mve import depthwise_conv2d as mve_dw
from toolchain.compiler.ops.mve.depthwise_conv2d import KERNEL, DepthwiseConv2DMve, band_rows
from toolchain.compiler.ops.variants import VARIANTS
from toolchain.compiler.passes import optimize
from toolchain.pipeline.api import deploy

pytestmark = pytest.mark.emulator

MVE_SOURCE = FIRMWARE_DIR / "kernels" / "mve" / "tm_depthwise_conv2d_s8.c"
INPUT = (11, 13, 1)


def many_depthwise(keras, seed: int = 0):
    keras.utils.set_random_seed(seed)

    def dw(x, kernel=3, strides=1, padding="same", mult=1, activation=None, name=None, big=False):
        layer = keras.layers.DepthwiseConv2D(kernel, strides=strides, padding=padding, depth_multiplier=mult,
                                             activation=activation, name=name,
                                             bias_initializer=keras.initializers.RandomUniform(-0.3, 0.3))
        y = layer(x)
        if big:  # int8 extremes: a kernel whose quantized weights reach +-127 in every tap
            k, b = layer.get_weights()
            layer.set_weights([np.sign(k + 1e-3) * 4.0, b])
        return y

    x = keras.Input(INPUT, name="input")
    a = dw(x, activation="relu6", name="c1_s1_same_relu6", big=True)               # 11x13x1
    b = dw(a, mult=3, name="c3_mult3")                                              # 11x13x3
    b2 = dw(b, strides=2, padding="valid", name="c3_s2_valid_odd")                  # 5x6x3
    c5 = dw(a, kernel=5, mult=5, name="c5_5x5_mult5")                               # 11x13x5 (generic)
    c5b = dw(c5, strides=2, name="c5_s2_same_odd")                                  # 6x7x5
    d16 = dw(a, mult=16, activation="relu", name="c16_mult16_relu")                 # 11x13x16
    d16b = dw(d16, strides=2, activation="relu", name="c16_s2_same_odd")            # 6x7x16
    d16c = dw(d16b, strides=2, name="c16_s2_same_even")                             # 3x4x16
    d16d = dw(d16b, padding="valid", name="c16_s1_valid_even")                      # 4x5x16
    dil = om._dilated_layer(keras, "depthwise", 1, 3, 1, "same", 2, None)(d16)      # 11x13x16, dilation 2
    e17 = keras.layers.Concatenate()([d16, a])                                      # 11x13x17
    e17a = dw(e17, padding="valid", name="c17_s1_valid")                            # 9x11x17
    e17b = dw(e17, kernel=(2, 3), strides=(1, 2), padding="valid", name="c17_2x3")  # 10x6x17 (generic)
    f40 = dw(c5, mult=8, name="c40_mult8")                                          # 11x13x40
    f40b = dw(f40, strides=2, activation="relu6", name="c40_s2_relu6")              # 6x7x40
    g12 = dw(a, mult=12, name="c12_mult12")                                         # 11x13x12
    g12a = dw(g12, kernel=(2, 3), name="c12_2x3_same")                              # 11x13x12 (cl)
    g12b = dw(g12, strides=(2, 1), activation="relu6", name="c12_s21_relu6")        # 6x13x12 (cl)
    # channel lanes in bands (a ring of rows, not the whole padded input): 5 rows in bands of 2, 2, 1
    h16 = dw(d16b, kernel=(2, 3), padding="valid", name="c16_2x3_valid_band2")       # 5x5x16 (cl, 2-row bands)
    h16a = dw(h16, activation="relu", name="c16_s1_same_band2")                     # 5x5x16 (cl, 2-row bands)
    h16b = dw(d16c, kernel=(2, 3), padding="valid", name="c16_2x3_one_band")        # 2x2x16 (cl, one band)
    outputs = [b2, c5b, d16c, d16d, dil, e17a, e17b, f40b, g12a, g12b, h16a, h16b]
    return keras.Model(x, [keras.layers.Flatten()(o) for o in outputs], name="many_depthwise")


LARGE_INPUT = (10, 36, 8)


def large_windows(keras, seed: int = 0):
    """5x5 and 7x7 depthwise layers (SAME, stride 1 and 2: padding 2/2, 1/2, 3/3, 2/3 per side), 8 and 36
    channels (the channel lanes) and 5 (odd: the pixel lanes), int8 extremes in the first layer's weights."""
    keras.utils.set_random_seed(seed)

    def dw(x, kernel, strides=1, activation=None, name=None, big=False):
        layer = keras.layers.DepthwiseConv2D(kernel, strides=strides, padding="same", activation=activation,
                                             name=name, bias_initializer=keras.initializers.RandomUniform(-0.3, 0.3))
        y = layer(x)
        if big:
            k, b = layer.get_weights()
            layer.set_weights([np.sign(k + 1e-3) * 4.0, b])
        return y

    x = keras.Input(LARGE_INPUT, name="input")
    a = dw(x, 5, activation="relu6", name="k5_s1_c8_wide", big=True)         # 10x36x8 (rows of 36 pixels)
    b = dw(a, 5, strides=2, name="k5_s2_c8")                                  # 5x18x8
    c = dw(a, 7, name="k7_s1_c8_wide")                                        # 10x36x8
    d = dw(c, 7, strides=2, activation="relu", name="k7_s2_c8")               # 5x18x8
    e = dw(keras.layers.Conv2D(5, 1, name="pw_c5")(b), 5, name="k5_s1_c5_odd")  # 5x18x5: pixel lanes
    f = dw(keras.layers.Conv2D(36, 1, name="pw_c36")(d), 7, name="k7_s1_c36")  # 5x18x36
    g = dw(f, 5, strides=2, name="k5_s2_c36")                                 # 3x9x36
    outputs = [e, g]
    return keras.Model(x, [keras.layers.Flatten()(o) for o in outputs], name="large_windows")


def depthwise_ops(tflite):
    """The graph as the code generator sees it: with the scratch budgets of the planner's second pass."""
    g, _ = plan_with_variants(optimize(load_tflite(tflite)), "mve")
    return g, [op for op in g.ops if op.kind == "DEPTHWISE_CONV_2D"]


def extreme_inputs(n_random: int = 1) -> np.ndarray:
    rng = np.random.default_rng(1)
    shape = (1, *INPUT)
    return np.concatenate([np.full(shape, -128, np.int8), np.full(shape, 127, np.int8),
                           rng.integers(-128, 128, (n_random, *INPUT)).astype(np.int8)])


@pytest.fixture(scope="module")
def model(tmp_path_factory, keras):
    m = many_depthwise(keras)
    path = tmp_path_factory.mktemp("dwmve") / "many_depthwise.tflite"
    return convert(m, om.representative(INPUT, n=16), path)


@pytest.fixture(scope="module")
def model_per_tensor(tmp_path_factory, keras):
    m = many_depthwise(keras, seed=3)
    path = tmp_path_factory.mktemp("dwmve_pt") / "many_depthwise_pt.tflite"
    return convert(m, om.representative(INPUT, n=16, seed=2), path, per_channel=False)


@pytest.fixture(scope="module")
def large_models(tmp_path_factory, keras):
    out = {}
    for per_channel in (True, False):
        path = tmp_path_factory.mktemp("dwmve_large") / f"large_{per_channel}.tflite"
        out[per_channel] = convert(large_windows(keras, seed=int(per_channel)), om.representative(LARGE_INPUT, n=16),
                                   path, per_channel=per_channel)
    return out


def check_on_device(tflite, tmp_path, inputs):
    result = deploy(tflite, get_board("mps3-an547"), tmp_path, inputs=inputs, samples=len(inputs),
                    kernels="mve", bands="none", progress=lambda _: None)
    assert result.bit_exact, result.mismatches[:3]
    model_c = (tmp_path / "c" / "model.c").read_text()
    calls = re.findall(r"\b(tm_depthwise_conv2d_s8\w*)\(", model_c)
    return calls


def test_many_depthwise_layers_bit_exact(model, tmp_path):
    g, ops = depthwise_ops(model)
    variant = VARIANTS[("DEPTHWISE_CONV_2D", "mve")]
    kernels = [variant.kernel_for(op, g) for op in ops if variant.applies(op, g)]
    assert len(kernels) == len(ops) >= 17  # every depthwise layer, ch_mult and dilation included
    calls = check_on_device(model, tmp_path, extreme_inputs())
    for stride in (1, 2):  # one entry point per column stride
        name = f"tm_depthwise_conv2d_s8_mve_3x3_s{stride}"
        assert calls.count(name) == kernels.count(name) >= 2, name
    assert calls.count("tm_depthwise_conv2d_s8_mve") == kernels.count("tm_depthwise_conv2d_s8_mve") >= 2
    assert calls.count("tm_depthwise_conv2d_s8_mve_cl") == kernels.count("tm_depthwise_conv2d_s8_mve_cl") >= 8
    # the bands as planned: one row, several rows with a shorter last band, and the whole input in one band
    bands = {(band_rows(op, g), g.tensors[op.outputs[0]].nhwc()[1]) for op in ops if band_rows(op, g)}
    assert (1, 11) in bands and (2, 5) in bands and (2, 2) in bands, bands
    assert "tm_depthwise_conv2d_s8" not in calls  # nothing fell back to the portable kernel


def test_per_tensor_weights_bit_exact(model_per_tensor, tmp_path):
    calls = check_on_device(model_per_tensor, tmp_path, extreme_inputs()[1:])  # max and random: keeps < 60 s
    variants = {"tm_depthwise_conv2d_s8_mve_3x3_s1", "tm_depthwise_conv2d_s8_mve_3x3_s2", "tm_depthwise_conv2d_s8_mve",
                "tm_depthwise_conv2d_s8_mve_cl"}
    assert variants <= set(calls)


@pytest.mark.parametrize("per_channel", [True, False])
def test_large_windows_bit_exact(large_models, per_channel, tmp_path):
    g, ops = depthwise_ops(large_models[per_channel])
    variant = VARIANTS[("DEPTHWISE_CONV_2D", "mve")]
    kernels = [variant.kernel_for(op, g) for op in ops]
    assert kernels.count("tm_depthwise_conv2d_s8_mve_cl_large") == 6 and kernels.count(KERNEL) == 1, kernels
    rng = np.random.default_rng(3)
    shape = (1, *LARGE_INPUT)
    inputs = np.concatenate([np.full(shape, -128, np.int8), np.full(shape, 127, np.int8),
                             rng.integers(-128, 128, shape).astype(np.int8)])
    calls = check_on_device(large_models[per_channel], tmp_path, inputs)
    assert sorted(calls) == sorted(kernels)


def test_large_window_chunks():
    """Chunks of 16 taps, each within a byte of the plane row of its first tap: 5x5 (taps 0-15 over rows 0-3)
    fits padded rows of up to 85 pixels, 7x7 (taps 32-47 over rows 4-6) up to 125, 3x3 (one chunk) up to 126; a
    9x9 window is more chunks than the kernel takes (MAX_CHUNKS)."""
    assert [mve_dw.chunks(k, k) for k in (3, 4, 5, 7, 8, 9)] == [1, 1, 2, 4, 4, 6] and mve_dw.MAX_CHUNKS == 4
    assert mve_dw.chunk_offsets_fit(5, 5, 1, 1, 85) and not mve_dw.chunk_offsets_fit(5, 5, 1, 1, 86)
    assert mve_dw.chunk_offsets_fit(7, 7, 1, 1, 125) and not mve_dw.chunk_offsets_fit(7, 7, 1, 1, 126)
    assert mve_dw.chunk_offsets_fit(3, 3, 1, 1, 126) and not mve_dw.chunk_offsets_fit(3, 3, 1, 1, 127)


def _differences_with_gain(tflite, nth: int, gain: float = 1.5) -> None:
    """Make the nth depthwise layer output, per channel, the difference of two taps (bias 0), rescaled by `gain`
    (> 1: a left shift) in its even channels and by gain / 4 (a right shift) in its odd ones: most outputs stay
    inside int8, where an off-by-one of either rounding shows."""
    def change(model):
        dw = te.operator(model, "DEPTHWISE_CONV_2D", nth)
        w, b, x, y = (te.tensor(model, t) for t in (dw.inputs[1], dw.inputs[2], dw.inputs[0], dw.outputs[0]))
        _, kh, kw, c = w.shape
        taps = np.zeros((kh * kw, c), np.int8)
        taps[np.arange(c) % (kh * kw), np.arange(c)] = 1
        taps[(np.arange(c) + kw + 1) % (kh * kw), np.arange(c)] = -1
        model.buffers[w.buffer].data = taps.view(np.uint8).reshape(-1)
        model.buffers[b.buffer].data = np.zeros(c, np.int32).view(np.uint8)
        scale = y.quantization.scale[0]
        w.quantization.scale = [scale / x.quantization.scale[0] * (gain if i % 2 == 0 else gain / 4) for i in range(c)]
        w.quantization.zeroPoint = [0] * c
        b.quantization.scale = [x.quantization.scale[0] * s for s in w.quantization.scale]
        b.quantization.zeroPoint = [0] * c
    tflite.write_bytes(te.edit(tflite.read_bytes(), change))


def test_left_shifting_channels_bit_exact(keras, tmp_path):
    """Channels whose scale is 1/2 or more (shift >= 0) run out of line in the pixel-lane variants, between
    right-shifting ones of the same row: both roundings, full 16-pixel blocks and every tail length."""
    keras.utils.set_random_seed(4)
    x = inputs = keras.Input((7, 21, 3), name="input")
    a = keras.layers.DepthwiseConv2D(3, padding="same", name="s1")(x)                  # 7x21x3: 16 + 5 pixels
    b = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", name="s2")(a)       # 4x11x3
    c = keras.layers.DepthwiseConv2D((2, 5), padding="valid", name="generic")(x)       # 6x17x3
    model = keras.Model(inputs, [keras.layers.Flatten()(o) for o in (b, c)])
    tflite = convert(model, om.representative((7, 21, 3), n=8), tmp_path / "left.tflite")
    for nth in range(3):
        _differences_with_gain(tflite, nth)
    g = optimize(load_tflite(tflite))
    for op in (op for op in g.ops if op.kind == "DEPTHWISE_CONV_2D"):
        _, shifts = per_channel_multipliers(*(g.tensors[t] for t in (op.inputs[0], op.inputs[1], op.outputs[0])), 3)
        assert shifts[0] >= 0 > shifts[1] and shifts[2] >= 0, shifts
    rng = np.random.default_rng(6)
    inputs = np.concatenate([np.full((1, 7, 21, 3), -128, np.int8),
                             rng.integers(-128, 128, (1, 7, 21, 3)).astype(np.int8)])
    result = deploy(tflite, get_board("mps3-an547"), tmp_path / "run", inputs=inputs, samples=len(inputs),
                    kernels="mve", bands="none", progress=lambda _: None)
    assert result.bit_exact, result.mismatches[:3]
    calls = re.findall(r"\b(tm_depthwise_conv2d_s8\w*)\(", (tmp_path / "run" / "c" / "model.c").read_text())
    assert sorted(calls) == ["tm_depthwise_conv2d_s8_mve", "tm_depthwise_conv2d_s8_mve_3x3_s1",
                             "tm_depthwise_conv2d_s8_mve_3x3_s2"]


class Tile(ctypes.Structure):
    _fields_ = [("h", ctypes.c_int32), ("w", ctypes.c_int32)]


class Params(ctypes.Structure):
    _fields_ = [("input_offset", ctypes.c_int32), ("output_offset", ctypes.c_int32), ("ch_mult", ctypes.c_int32),
                ("stride", Tile), ("padding", Tile), ("dilation", Tile), ("min", ctypes.c_int32),
                ("max", ctypes.c_int32)]


class Dims(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


@pytest.mark.parametrize("which", ["many", "large"])
def test_scratch_bytes_match_get_buffer_size(which, model, large_models, tmp_path):
    """The buffer-size companion is portable C (the kernels are MVE only): built on the host, it must give
    every layer's planned scratch."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found")
    lib = tmp_path / "libdwmve.so"
    proc = subprocess.run(["gcc", "-std=c99", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror",
                           f"-I{KERNEL_INCLUDE}", str(MVE_SOURCE), "-o", str(lib)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    pixel_fn = ctypes.CDLL(str(lib)).tm_depthwise_conv2d_s8_mve_get_buffer_size
    cl_fn = ctypes.CDLL(str(lib)).tm_depthwise_conv2d_s8_mve_cl_get_buffer_size
    pixel_fn.restype = cl_fn.restype = ctypes.c_int32
    cl_fn.argtypes = [ctypes.POINTER(Params), ctypes.c_int32, *[ctypes.POINTER(Dims)] * 3]
    g, ops = depthwise_ops(model if which == "many" else large_models[True])
    from toolchain.compiler.ops.base import window_geometry
    for op in ops:
        inp, w, out = (g.tensors[t] for t in (op.inputs[0], op.inputs[1], op.outputs[0]))
        geo = window_geometry(op, g, w.shape[1], w.shape[2])
        params = Params(0, 0, out.shape[3] // inp.shape[3], Tile(*geo["stride"]), Tile(*geo["pad"]),
                        Tile(*geo["dilation"]), -128, 127)
        dims = [ctypes.byref(Dims(*t.nhwc())) for t in (inp, w, out)]
        band = band_rows(op, g)
        c_size = cl_fn(ctypes.byref(params), band, *dims) if band else pixel_fn(ctypes.byref(params), *dims)
        assert c_size == DepthwiseConv2DMve().scratch_bytes(op, g) > 0, op.location
        if band:  # a band of every output row: the whole padded input (the planes)
            full = cl_fn(ctypes.byref(params), out.nhwc()[1], *dims)
            assert full >= c_size and full == cl_fn(ctypes.byref(params), 10**6, *dims) == inp.shape[3] * (
                (out.nhwc()[1] - 1) * geo["stride"][0] + (w.shape[1] - 1) * geo["dilation"][0] + 1) * (
                (out.nhwc()[2] - 1) * geo["stride"][1] + (w.shape[2] - 1) * geo["dilation"][1] + 1)
