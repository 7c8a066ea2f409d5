"""The mve CONV_2D kernels (firmware/kernels/mve/tm_conv2d_s8.c) on mps3-an547 (Cortex-M55): bit-exact with
LiteRT BUILTIN_REF across odd channel counts, depths that are not multiples of 16 (K <= 16, <= 32 held in
registers, larger), padding on every side,
strides, dilation, fused ReLU/ReLU6, per-channel and per-tensor weights and int8 extremes; their scratch
sizes equal the compiler's; the shapes they refuse fall back."""
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
from toolchain.compiler.frontend import load_tflite
from toolchain.compiler.ops.base import per_channel_multipliers
from toolchain.compiler.ops.mve.conv2d import Conv2DMve, gemm_routine, pack_filter, requant_blocks, pack_stream
from toolchain.compiler.ops.variants import variant_for
from toolchain.compiler.passes import optimize
from toolchain.pipeline.api import compile_stage, deploy

pytestmark = pytest.mark.emulator

BOARD = "mps3-an547"
ONE_BY_ONE, IM2COL = "tm_conv2d_s8_mve_1x1", "tm_conv2d_s8_mve_im2col"


def _bias(keras):
    return keras.initializers.RandomUniform(-0.5, 0.5)


def one_channel_model(keras):
    """One input channel (KWS's first layer), then odd channel counts, tails of every depth, padding on every
    side (SAME with an even filter, a folded ZeroPadding2D), dilation 2, 1x1 with stride 2, an odd pixel count."""
    keras.utils.set_random_seed(1)
    x = inputs = keras.Input((11, 13, 1), name="input")
    x = keras.layers.Conv2D(5, (4, 3), strides=2, padding="same", activation="relu6", bias_initializer=_bias(keras),
                            name="k4x3_s2_c1")(x)  # pads top 1, bottom 2, left 1, right 1
    x = keras.layers.Conv2D(17, 3, padding="same", activation="relu", bias_initializer=_bias(keras),
                            name="k3_c5_o17")(x)  # K = 45: two vectors and a 13-byte tail
    x = keras.layers.Conv2D(33, 1, bias_initializer=_bias(keras), name="pw_c17_o33")(x)  # K = 17
    x = om._dilated_layer(keras, "conv", 3, 3, 1, "same", 2, "relu")(x)  # dilation 2, 3 output channels
    x = keras.layers.ZeroPadding2D(((2, 0), (0, 1)), name="pad")(x)
    x = keras.layers.Conv2D(32, 2, padding="valid", activation="relu", bias_initializer=_bias(keras),
                            name="k2_folded_pad")(x)  # 7 x 7 = 49 pixels: an odd one at the end
    x = keras.layers.Conv2D(25, 1, activation="relu6", bias_initializer=_bias(keras),
                            name="pw_odd_pixels")(x)  # K = 32: two whole vectors held in registers
    x = keras.layers.Conv2D(17, 1, strides=2, bias_initializer=_bias(keras), name="pw_s2")(x)  # K = 25, strided
    x = keras.layers.Conv2D(40, 1, bias_initializer=_bias(keras), name="pw_k17")(x)
    x = keras.layers.Conv2D(9, 1, strides=2, activation="relu", bias_initializer=_bias(keras),
                            name="pw_s2_k40")(x)  # K > 32, strided
    return keras.Model(inputs, x, name="mve_conv_one_channel")


def three_channel_model(keras):
    """Three input channels (IC's and VWW's first layers), VALID padding, a 1x1 over an odd pixel count."""
    keras.utils.set_random_seed(2)
    x = inputs = keras.Input((13, 14, 3), name="input")
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", bias_initializer=_bias(keras),
                            name="k3_s2_c3")(x)  # 7 x 7 = 49 pixels
    x = keras.layers.Conv2D(6, 1, bias_initializer=_bias(keras), name="pw_k8")(x)  # small K, contiguous, odd pixels
    x = keras.layers.Conv2D(7, 1, strides=2, activation="relu", bias_initializer=_bias(keras),
                            name="pw_s2_k6")(x)  # small K, strided
    x = keras.layers.Conv2D(5, 3, padding="valid", activation="relu6", bias_initializer=_bias(keras),
                            name="k3_valid")(x)
    x = keras.layers.Conv2D(32, (1, 2), padding="same", bias_initializer=_bias(keras), name="k1x2_same")(x)
    x = keras.layers.Conv2D(7, 1, bias_initializer=_bias(keras), name="pw_last")(x)  # K = 32: whole vectors
    return keras.Model(inputs, x, name="mve_conv_three_channels")


def _extreme_inputs(shape, seed: int) -> np.ndarray:
    """All -128, all 127, and random int8 over the whole range."""
    rng = np.random.default_rng(seed)
    return np.stack([np.full(shape, -128), np.full(shape, 127),
                     rng.integers(-128, 128, shape)]).astype(np.int8)


def _small_sums_with_gain(tflite, nth: int, gain: float = 1.5) -> None:
    """Make the nth conv (per-tensor weights) sum x[c] - x[c + 1] with bias 0 and rescale by `gain` > 1: a left
    shift (the kernels' general requantization) with most outputs still inside int8, where an off-by-one
    of the rounding shows (random weights give factors far below 1)."""
    def change(model):
        conv = te.operator(model, "CONV_2D", nth)
        w, b, x, y = (te.tensor(model, t) for t in (conv.inputs[1], conv.inputs[2], conv.inputs[0], conv.outputs[0]))
        c_out, k = w.shape[0], int(np.prod(w.shape[1:]))
        rows = np.zeros((c_out, k), np.int8)
        rows[np.arange(c_out), np.arange(c_out) % k] = 1
        rows[np.arange(c_out), (np.arange(c_out) + 1) % k] = -1
        model.buffers[w.buffer].data = rows.view(np.uint8).reshape(-1)
        model.buffers[b.buffer].data = np.zeros(c_out, np.int32).view(np.uint8)
        y.quantization.scale = [x.quantization.scale[0] * w.quantization.scale[0] / gain]
    tflite.write_bytes(te.edit(tflite.read_bytes(), change))


def _deploy_and_check(tflite, tmp_path, shape, seed):
    result = deploy(tflite, get_board(BOARD), tmp_path, inputs=_extreme_inputs(shape, seed), kernels="mve",
                    bands="none", progress=lambda _: None)
    assert result.bit_exact, result.mismatches[:3]
    return (tmp_path / "c" / "model.c").read_text()


def _kernel_calls(model_c: str) -> list[str]:
    return re.findall(r"(tm_conv2d_s8\w*)\(&", model_c)


def test_one_channel_layers_bit_exact(keras, tmp_path):
    model = one_channel_model(keras)
    tflite = convert(model, om.representative(model.input_shape[1:], seed=1), tmp_path / "one.tflite")
    calls = _kernel_calls(_deploy_and_check(tflite, tmp_path, (11, 13, 1), 1))
    assert calls == [IM2COL, IM2COL, ONE_BY_ONE, IM2COL, IM2COL] + [ONE_BY_ONE] * 4


def test_three_channel_per_tensor_layers_bit_exact(keras, tmp_path):
    model = three_channel_model(keras)
    tflite = convert(model, om.representative(model.input_shape[1:], seed=2), tmp_path / "three.tflite",
                     per_channel=False)
    _small_sums_with_gain(tflite, 1)  # K = 8: the small-K 1x1 with a left shift
    _small_sums_with_gain(tflite, 3)  # K = 54: the general GEMM with a left shift
    _small_sums_with_gain(tflite, 4)  # K = 10: the small-K im2col with a left shift
    _small_sums_with_gain(tflite, 5)  # K = 32: two vectors held, a left shift
    g = optimize(load_tflite(tflite))
    convs = [op for op in g.ops if op.kind == "CONV_2D"]
    for op in convs[3:] + convs[1:2]:
        _, shifts = per_channel_multipliers(*(g.tensors[t] for t in (op.inputs[0], op.inputs[1], op.outputs[0])),
                                            g.tensors[op.inputs[1]].shape[0])
        assert shifts == [1] * len(shifts)
    model_c = _deploy_and_check(tflite, tmp_path, (13, 14, 3), 2)
    assert _kernel_calls(model_c) == [IM2COL, ONE_BY_ONE, ONE_BY_ONE, IM2COL, IM2COL, ONE_BY_ONE]
    # each layer names its GEMM routine, and the firmware links those only
    named = set(re.findall(r"\.gemm = &(tm_conv2d_mve_gemm_\w+)", model_c))
    assert {"tm_conv2d_mve_gemm_held1_any", "tm_conv2d_mve_gemm_held2_any", "tm_conv2d_mve_gemm_rows_any"} <= named
    assert _linked(tmp_path, "tm_conv2d_mve_gemm_") == named


def _linked(work, prefix: str) -> set[str]:
    """The symbols starting with `prefix` in the firmware deploy built in `work`."""
    elf = next(work.glob("fw-*/firmware.elf"))
    nm = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in nm.splitlines() if line.split() and line.split()[-1].startswith(prefix)}


def test_gemm_routine_follows_k_and_shifts():
    assert gemm_routine(16, [-1, -3]) == "tm_conv2d_mve_gemm_held1_plain"
    assert gemm_routine(17, [-1, 0]) == "tm_conv2d_mve_gemm_held2_any"
    assert gemm_routine(32, [2]) == "tm_conv2d_mve_gemm_held2_any"
    assert gemm_routine(33, [-5]) == "tm_conv2d_mve_gemm_rows_plain"
    assert gemm_routine(48, [-5]) == "tm_conv2d_mve_gemm_rows_whole_plain"
    assert gemm_routine(64, [-5, 1]) == "tm_conv2d_mve_gemm_rows_whole_any"


@pytest.fixture(scope="module")
def buffer_sizes(tmp_path_factory) -> ctypes.CDLL:
    """The mve file's _get_buffer_size companions built for the host (they sit outside its MVE guard)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found")
    lib = tmp_path_factory.mktemp("mve") / "libtm_mve_sizes.so"
    cmd = ["gcc", "-std=c99", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror", f"-I{KERNEL_INCLUDE}",
           str(FIRMWARE_DIR / "kernels" / "mve" / "tm_conv2d_s8.c"), "-o", str(lib)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return ctypes.CDLL(str(lib))


class Dims(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


def test_scratch_bytes_equal_the_c_buffer_size_and_large_filters_fall_back(keras, tmp_path, buffer_sizes):
    keras.utils.set_random_seed(3)
    x = inputs = keras.Input((6, 6, 300), name="input")
    x = keras.layers.Conv2D(9, 3, padding="same", name="k3_c300")(x)  # K = 2700: 5408 bytes of scratch
    x = keras.layers.Conv2D(460, 1, name="pw")(x)
    x = keras.layers.Conv2D(2, 3, padding="valid", name="k3_c460")(x)  # K = 4140: above MAX_SCRATCH, refused
    model = keras.Model(inputs, x)
    tflite = convert(model, om.representative(model.input_shape[1:], n=4), tmp_path / "big.tflite")
    g = optimize(load_tflite(tflite))
    convs = [op for op in g.ops if op.kind == "CONV_2D"]
    used = [variant_for(op, g, "mve") for op in convs]
    assert [isinstance(v, Conv2DMve) for v in used] == [True, True, False]
    for op, v in zip(convs[:2], used[:2]):
        fn = getattr(buffer_sizes, f"{v.kernel_for(op, g)}_get_buffer_size")
        fn.restype = ctypes.c_int32
        fn.argtypes = [ctypes.POINTER(Dims)] * 3
        dims = [g.tensors[t].nhwc() for t in (op.inputs[0], op.inputs[1], op.outputs[0])]
        assert fn(*(ctypes.byref(Dims(*d)) for d in dims)) == v.scratch_bytes(op, g)
    assert used[0].scratch_bytes(convs[0], g) == 5408
    compiled = compile_stage(tflite, tmp_path / "c", target="mve", bands="none")
    calls = _kernel_calls((compiled.out_dir / "model.c").read_text())
    assert calls[:2] == [IM2COL, ONE_BY_ONE] and not calls[2].startswith("tm_conv2d_s8_mve")


def test_packed_filter_and_blocks_reproduce_the_convolution_sums():
    """The layouts of tm_conv2d_s8.h (mve), read as the kernel reads them, give the reference accumulators."""
    rng = np.random.default_rng(4)
    w = rng.integers(-127, 128, (6, 2, 3, 5)).astype(np.int8)  # 6 channels (a padded block), K = 30
    bias = rng.integers(-5000, 5000, 6).astype(np.int32)
    rows = rng.integers(-128, 128, (3, 30))
    packed = pack_filter(w).reshape(2, 2, 4, 16)
    blocks = requant_blocks(w, bias, 77, [1 << 30] * 6, [-3, 2, 0, -31, 1, -1]).reshape(2, 4, 4)
    for c in range(6):
        b, lane = divmod(c, 4)
        filt = packed[b, :, lane, :].reshape(-1)
        assert not filt[14:16].any()  # K = 30: the first chunk holds 14 bytes
        filt = np.concatenate([filt[:14], filt[16:]])
        for row in rows:
            acc = int(blocks[b, 0, lane]) + int(np.dot(filt.astype(np.int64), row))
            assert acc == int(bias[c]) + int(np.dot(w[c].reshape(-1).astype(np.int64), row + 77))
    assert blocks[0, 2].tolist() == [0, 2, 0, 0] and blocks[0, 3].tolist() == [-3, 0, 0, -31]
    assert not blocks[1, :, 2:].any()  # padding channels


def test_pack_stream_interleaves_weights_and_constants():
    """Per block, the packed weight vectors (k16 / 16 chunks of 4 x 16 bytes), then bias', multiplier, left,
    -right shift."""
    rng = np.random.default_rng(5)
    for k, chunks in ((11, 1), (20, 2), (40, 3)):
        w = rng.integers(-127, 128, (6, 1, 1, k)).astype(np.int8)
        blocks = requant_blocks(w, None, 3, [1 << 30] * 6, [-2] * 6)
        stream = pack_stream(pack_filter(w), blocks).reshape(2, 16 * chunks + 16)
        weights = stream[:, :16 * chunks].astype("<i4").view(np.int8).reshape(2, chunks, 4, 16)
        first = k - 16 * (chunks - 1)
        assert (weights[0, 0, 1, :first] == w[1].reshape(-1)[:first]).all() and not weights[:, 0, :, first:].any()
        assert chunks == 1 or (weights[0, -1, 1, :] == w[1].reshape(-1)[-16:]).all()
        assert not weights[1, :, 2:].any()  # padding channels
        assert (stream[:, 16 * chunks:] == blocks.reshape(2, 16)).all()
