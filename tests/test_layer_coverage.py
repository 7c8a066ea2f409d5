"""Issue 17's acceptance: the common tf_keras layers, each as a small model with Keras's default unknown batch
size, go through `tinyml export` and compile bit-exact with LiteRT BUILTIN_REF; on the emulated Cortex-M4 too
(every layer in the slow run, a sample of them in the default run); a MobileNetV3-Small-like model and a GRU
keyword model run end to end in QEMU."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import op_models as om
from conftest import compile_and_check
from toolchain.cli import main
from toolchain.compiler.frontend import load_tflite

EMULATOR = all(shutil.which(t) for t in ("cmake", "arm-none-eabi-gcc", "qemu-system-arm"))


def _dense_head(keras, x, units=4):
    return keras.layers.Dense(units, name="head")(keras.layers.Flatten()(x))


# name -> (input shape without the batch, layers applied to the input). No Input has a batch size.
LAYERS = {
    "Dense": ((12,), lambda k, x: k.layers.Dense(6, activation="relu")(x)),
    "Dense-3d": ((5, 12), lambda k, x: k.layers.Dense(6)(x)),
    "Conv1D": ((16, 3), lambda k, x: k.layers.Conv1D(5, 3, padding="same", activation="relu")(x)),
    "Conv2D": ((8, 8, 3), lambda k, x: k.layers.Conv2D(6, 3, strides=2, padding="same")(x)),
    "Conv2D-dilated": ((10, 10, 3), lambda k, x: k.layers.Conv2D(4, 3, dilation_rate=2, padding="same")(x)),
    "DepthwiseConv2D": ((8, 8, 4), lambda k, x: k.layers.DepthwiseConv2D(3, padding="same")(x)),
    "SeparableConv2D": ((8, 8, 4), lambda k, x: k.layers.SeparableConv2D(6, 3, padding="same")(x)),
    "Conv2DTranspose": ((5, 5, 4), lambda k, x: k.layers.Conv2DTranspose(3, 3, strides=2, padding="same")(x)),
    "BatchNormalization": ((6, 6, 3), lambda k, x: k.layers.BatchNormalization()(x)),
    "ReLU": ((6, 6, 3), lambda k, x: k.layers.ReLU()(k.layers.Conv2D(4, 1)(x))),
    "ReLU6": ((6, 6, 3), lambda k, x: k.layers.ReLU(6.0)(k.layers.Conv2D(4, 1)(x))),
    "LeakyReLU": ((6, 6, 3), lambda k, x: k.layers.LeakyReLU(0.2)(k.layers.Conv2D(4, 1)(x))),
    "PReLU": ((6, 6, 3), lambda k, x: k.layers.PReLU(shared_axes=[1, 2])(k.layers.Conv2D(4, 1)(x))),
    "sigmoid": ((16,), lambda k, x: k.layers.Activation("sigmoid")(k.layers.Dense(8)(x))),
    "tanh": ((16,), lambda k, x: k.layers.Activation("tanh")(k.layers.Dense(8)(x))),
    "swish": ((16,), lambda k, x: k.layers.Activation("swish")(k.layers.Dense(8)(x))),
    "hard_sigmoid": ((16,), lambda k, x: k.layers.Activation("hard_sigmoid")(k.layers.Dense(8)(x))),
    "Softmax": ((16,), lambda k, x: k.layers.Softmax()(k.layers.Dense(8)(x))),
    "MaxPooling2D": ((8, 8, 3), lambda k, x: k.layers.MaxPooling2D(2)(x)),
    "AveragePooling2D": ((8, 8, 3), lambda k, x: k.layers.AveragePooling2D(2)(x)),
    "MaxPooling1D": ((16, 3), lambda k, x: k.layers.MaxPooling1D(2)(x)),
    "GlobalAveragePooling2D": ((6, 6, 5), lambda k, x: k.layers.GlobalAveragePooling2D()(x)),
    "GlobalMaxPooling2D": ((6, 6, 5), lambda k, x: k.layers.GlobalMaxPooling2D()(x)),
    "GlobalAveragePooling1D": ((12, 5), lambda k, x: k.layers.GlobalAveragePooling1D()(x)),
    "UpSampling2D": ((4, 4, 3), lambda k, x: k.layers.UpSampling2D(2)(x)),
    "UpSampling2D-bilinear": ((4, 4, 3), lambda k, x: k.layers.UpSampling2D(2, interpolation="bilinear")(x)),
    "ZeroPadding2D": ((6, 6, 3), lambda k, x: k.layers.ZeroPadding2D(((1, 2), (0, 1)))(x)),
    "Cropping2D": ((8, 8, 3), lambda k, x: k.layers.Cropping2D(((1, 2), (2, 1)))(x)),
    "Flatten": ((4, 4, 3), lambda k, x: k.layers.Dense(5)(k.layers.Flatten()(x))),
    "Reshape": ((4, 6), lambda k, x: k.layers.Reshape((6, 4))(k.layers.Dense(6)(x))),
    "Permute": ((4, 6, 2), lambda k, x: k.layers.Permute((2, 1, 3))(x)),
    "Concatenate": ((6, 6, 3), lambda k, x: k.layers.Concatenate()([x, k.layers.Conv2D(2, 1)(x)])),
    "Add": ((6, 6, 3), lambda k, x: k.layers.Add()([x, k.layers.Conv2D(3, 1)(x)])),
    "Subtract": ((6, 6, 3), lambda k, x: k.layers.Subtract()([x, k.layers.Conv2D(3, 1)(x)])),
    "Multiply": ((6, 6, 3), lambda k, x: k.layers.Multiply()([x, k.layers.Conv2D(3, 1)(x)])),
    "Maximum": ((6, 6, 3), lambda k, x: k.layers.Maximum()([x, k.layers.Conv2D(3, 1)(x)])),
    "Minimum": ((6, 6, 3), lambda k, x: k.layers.Minimum()([x, k.layers.Conv2D(3, 1)(x)])),
    "Average": ((6, 6, 3), lambda k, x: k.layers.Average()([x, k.layers.Conv2D(3, 1)(x)])),
    "Dropout": ((12,), lambda k, x: k.layers.Dense(4)(k.layers.Dropout(0.3)(x))),
    "SimpleRNN": ((8, 6), lambda k, x: k.layers.SimpleRNN(8, unroll=True)(x)),
    "GRU": ((8, 6), lambda k, x: k.layers.GRU(8, unroll=True)(x)),
    "LSTM": ((8, 6), lambda k, x: k.layers.LSTM(8, unroll=True)(x)),
}
ON_THE_DEVICE_BY_DEFAULT = ("Conv2D-dilated", "Conv2DTranspose", "GlobalMaxPooling2D", "UpSampling2D-bilinear", "GRU")


def _model(keras, name, seed=0):
    shape, layer = LAYERS[name]
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape, name="input")  # the default: batch size unknown
    return keras.Model(inputs, layer(keras, inputs), name=name.replace("-", "_")), shape


def export_through_the_cli(model, shape, tmp_path: Path) -> Path:
    """What a user does: save the model, write calibration data, `tinyml export`."""
    saved, calibration, out = tmp_path / "model.keras", tmp_path / "calibration.npy", tmp_path / "model.tflite"
    model.save(saved)
    np.save(calibration, np.random.default_rng(1).uniform(-1, 1, (16, *shape)).astype(np.float32))
    assert main(["export", str(saved), "-o", str(out), "--calibration", str(calibration)]) == 0
    return out


@pytest.fixture(scope="module")
def exported(keras, tmp_path_factory):
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            model, shape = _model(keras, name)
            cache[name] = export_through_the_cli(model, shape, tmp_path_factory.mktemp(name.lower()))
        return cache[name]

    return get


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_with_an_unknown_batch_compiles_bit_exact(exported, tmp_path, name):
    tflite = exported(name)
    assert load_tflite(tflite).ops, name
    compile_and_check(tflite, tmp_path / "out", samples=4)


def _on_the_cortex_m4(tflite: Path, out: Path):
    from toolchain.boards import get_board
    from toolchain.pipeline import api

    run = api.deploy(tflite, get_board("mps2-an386"), out, samples=2, progress=lambda _: None)
    assert run.bit_exact, run
    return run


@pytest.mark.emulator
@pytest.mark.skipif(not EMULATOR, reason="needs cmake, arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("name", ON_THE_DEVICE_BY_DEFAULT)
def test_layer_runs_bit_exact_on_the_cortex_m4(exported, tmp_path, name):
    _on_the_cortex_m4(exported(name), tmp_path / "run")


@pytest.mark.slow
@pytest.mark.emulator
@pytest.mark.skipif(not EMULATOR, reason="needs cmake, arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("name", sorted(set(LAYERS) - set(ON_THE_DEVICE_BY_DEFAULT)))
def test_every_layer_runs_bit_exact_on_the_cortex_m4(exported, tmp_path, name):
    _on_the_cortex_m4(exported(name), tmp_path / "run")


@pytest.mark.emulator
@pytest.mark.skipif(not EMULATOR, reason="needs cmake, arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("build, shape, needed", [
    (om.mobilenet_v3_small_like, (96, 96, 3), {"HARD_SWISH", "MUL", "MEAN", "DEPTHWISE_CONV_2D"}),
    (om.gru_keywords, (49, 10), {"LOGISTIC", "TANH", "MUL", "FULLY_CONNECTED"}),
], ids=["mobilenet-v3-small-like", "gru-keywords"])
def test_user_models_run_end_to_end_in_qemu(tmp_path, build, shape, needed):
    from toolchain import zoo

    model = build()
    # Random weights: BatchNorm statistics from data, so the activations (and the logits) are not all dead.
    zoo.calibrate_batchnorm(model, np.random.default_rng(2).uniform(-1, 1, (16, *shape)).astype(np.float32))
    tflite = export_through_the_cli(model, shape, tmp_path)
    ops = {op.kind for op in load_tflite(tflite).ops}
    assert needed <= ops, sorted(ops)
    run = _on_the_cortex_m4(tflite, tmp_path / "run")
    assert run.run.layers
