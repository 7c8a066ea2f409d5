"""Randomised shapes through every kernel path: seeded random chains of convolutions (1x1, k x k, few input
channels, stride 2, dilation), depthwise layers (multiplier 1 and 2), ADD, average pool and FULLY_CONNECTED,
checked bit-exact against LiteRT BUILTIN_REF on the host (dsp) and in QEMU (dsp on the M4 and the M33, mve on
the M55). The fixed-shape edge cases are in the per-op test files (test_fast_*.py)."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import convert
from toolchain.boards import get_board
from toolchain.compiler import compile_model
from toolchain.pipeline.api import deploy
from toolchain.verify.check import check_against_reference

pytestmark = pytest.mark.emulator

SEEDS = (11, 12)


def random_model(keras, seed: int):
    """A chain of layers with random shapes drawn from `seed` (per-channel int8 weights after conversion)."""
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)

    def bias():
        return keras.initializers.RandomUniform(-0.5, 0.5, seed=int(rng.integers(1 << 30)))

    h, w, c = int(rng.integers(5, 14)), int(rng.integers(5, 14)), int(rng.integers(1, 4))
    inputs = keras.Input((h, w, c))
    x = inputs
    for i in range(5):
        kind = ["conv", "pointwise", "depthwise", "residual"][int(rng.integers(0, 4))] if i else "conv"
        act = [None, "relu", "relu6"][int(rng.integers(0, 3))]
        if kind == "conv":
            k = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
            stride = int(rng.integers(1, 3)) if min(x.shape[1:3]) > 4 else 1
            dilation = 2 if stride == 1 and rng.random() < 0.3 and min(x.shape[1:3]) > 2 * max(k) else 1
            x = keras.layers.Conv2D(int(rng.integers(1, 40)), k, strides=stride, dilation_rate=dilation,
                                    padding=["same", "valid"][int(rng.integers(0, 2)) if max(k) <= min(
                                        x.shape[1:3]) else 0], activation=act, bias_initializer=bias())(x)
        elif kind == "pointwise":
            x = keras.layers.Conv2D(int(rng.integers(1, 70)), 1, activation=act, bias_initializer=bias())(x)
        elif kind == "depthwise":
            x = keras.layers.DepthwiseConv2D(3, strides=int(rng.integers(1, 3)) if min(x.shape[1:3]) > 3 else 1,
                                             padding="same", depth_multiplier=int(rng.integers(1, 3)),
                                             activation=act, bias_initializer=bias())(x)
        else:
            y = keras.layers.Conv2D(int(x.shape[-1]), 3, padding="same", bias_initializer=bias())(x)
            x = keras.layers.Add()([x, y])
    if min(x.shape[1:3]) >= 2:
        x = keras.layers.AveragePooling2D(2, padding="same")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(int(rng.integers(2, 20)), activation="relu", bias_initializer=bias())(x)
    x = keras.layers.Dense(int(rng.integers(2, 11)), bias_initializer=bias())(x)
    return keras.Model(inputs, x)


@pytest.fixture(scope="module", params=SEEDS)
def random_tflite(request, tmp_path_factory, keras):
    model = random_model(keras, request.param)
    rep = np.random.default_rng(request.param).uniform(-1, 1, (24, *model.input_shape[1:])).astype(np.float32)
    return convert(model, rep, tmp_path_factory.mktemp(f"random{request.param}") / "m.tflite")


def test_dsp_path_bit_exact_on_the_host(random_tflite, tmp_path):
    compile_model(random_tflite, tmp_path / "c", target="dsp")
    report = check_against_reference(random_tflite, tmp_path / "c", samples=4, seed=1)
    assert report.ok, report.summary()


@pytest.mark.parametrize("board,kernels", [("mps2-an386", "dsp"), ("mps2-an505", "dsp"), ("mps3-an547", "mve")])
def test_fast_paths_bit_exact_on_device(random_tflite, board, kernels, tmp_path):
    result = deploy(random_tflite, get_board(board), tmp_path, samples=2, kernels=kernels, progress=lambda _: None)
    assert result.bit_exact, result.mismatches[:3]
    model_c = (tmp_path / "c" / "model.c").read_text()
    assert f"_s8_{kernels}" in model_c or (kernels == "mve" and "_s8_dsp" in model_c)  # a variant was used
