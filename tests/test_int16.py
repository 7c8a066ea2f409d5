"""int16 activations with int8 weights (TFLite's "16x8" quantization, issue 17): `tinyml export --activations
int16`, then FULLY_CONNECTED, SOFTMAX, CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, MAX_POOL_2D, MEAN, ADD, MUL,
LOGISTIC, TANH, QUANTIZE and DEQUANTIZE through their int16 kernels, bit-exact with LiteRT BUILTIN_REF on random
int16 inputs over the whole range; an int16 op without an int16 kernel is refused by name before anything is
written."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import op_models as om
from conftest import compile_and_check, convert
from toolchain.compiler import compile_model
from toolchain.compiler.frontend import load_tflite
from toolchain.errors import ToolchainError


def convert16(model, path, n=16, seed=0):
    """`model` quantized 16x8 (int16 input and output), its int16 tensors checked."""
    tflite = convert(model, om.representative(model.input_shape[1:], n=n, seed=seed), path, activations="int16")
    g = load_tflite(tflite)
    assert {g.tensors[t].dtype for t in (*g.inputs, *g.outputs)} == {"int16"}
    return tflite


def kinds(tflite) -> list[str]:
    return [op.kind for op in load_tflite(tflite).ops]


def bias(keras, seed):
    return keras.initializers.RandomUniform(-0.3, 0.3, seed=seed)


def classifier(keras, depth, hidden, classes, seed):
    """Dense -> ReLU Dense -> Dense -> Softmax: the smallest 16x8 model with each kernel's int64 bias."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((depth,), name="features")
    x = keras.layers.Dense(hidden, activation="relu", bias_initializer=bias(keras, 1), name="hidden")(inputs)
    x = keras.layers.Dense(classes, bias_initializer=bias(keras, 2), name="logits")(x)
    return keras.Model(inputs, keras.layers.Softmax(name="probs")(x))


@pytest.mark.parametrize("depth, hidden, classes", [(24, 16, 7), (5, 33, 3), (70, 8, 12)])
def test_dense_dense_softmax_is_bit_exact(keras, tmp_path, depth, hidden, classes):
    tflite = convert16(classifier(keras, depth, hidden, classes, seed=depth), tmp_path / "fc.tflite")
    assert kinds(tflite) == ["FULLY_CONNECTED", "FULLY_CONNECTED", "SOFTMAX"]
    result = compile_and_check(tflite, tmp_path / "out", samples=16)
    assert [layer.op for layer in result.plan.layers] == ["FULLY_CONNECTED", "FULLY_CONNECTED", "SOFTMAX"]
    model_c = (tmp_path / "out" / "model.c").read_text()
    assert "tm_fully_connected_s16(" in model_c and "tm_softmax_s16(" in model_c and "_s8(" not in model_c
    assert result.plan.inputs[0].bytes == 2 * depth  # int16 in the arena and the I/O buffers


def test_float_input_and_output_quantize_to_int16(keras, tmp_path):
    model = classifier(keras, 10, 8, 4, seed=3)
    tflite = convert(model, om.representative((10,), n=16), tmp_path / "f.tflite", activations="int16",
                     int8_io=False)
    assert kinds(tflite) == ["QUANTIZE", "FULLY_CONNECTED", "FULLY_CONNECTED", "SOFTMAX", "DEQUANTIZE"]
    compile_and_check(tflite, tmp_path / "out", samples=16)
    model_c = (tmp_path / "out" / "model.c").read_text()
    assert "tm_quantize_s16(" in model_c and "tm_dequantize_s16(" in model_c


def test_softmax_alone_is_bit_exact(keras, tmp_path):
    tflite = convert16(om.softmax(input_shape=(4, 10)), tmp_path / "sm.tflite")
    compile_and_check(tflite, tmp_path / "out", samples=16)


@pytest.mark.parametrize("seed", range(3))
def test_conv2d_with_random_shapes_is_bit_exact(keras, tmp_path, seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(5, 12)), int(rng.integers(5, 12)), int(rng.integers(1, 5)))
    kwargs = dict(kernel=int(rng.integers(1, 4)), strides=int(rng.integers(1, 3)), filters=int(rng.integers(2, 9)),
                  padding=str(rng.choice(["same", "valid"])), activation=[None, "relu", "relu6"][seed])
    tflite = convert16(om.conv2d(input_shape=shape, seed=seed, **kwargs), tmp_path / "conv.tflite")
    assert "CONV_2D" in kinds(tflite)
    compile_and_check(tflite, tmp_path / "out", samples=6)


def test_dilated_conv2d_is_bit_exact(keras, tmp_path):
    tflite = convert16(om.conv2d(dilation=2, input_shape=(9, 9, 3)), tmp_path / "dil.tflite")
    compile_and_check(tflite, tmp_path / "out", samples=4)


@pytest.mark.parametrize("kwargs", [
    dict(kernel=3, depth_multiplier=2, strides=2, padding="same"),
    dict(kernel=(3, 2), depth_multiplier=1, strides=1, padding="valid", activation=None),
])
def test_depthwise_conv2d_is_bit_exact(keras, tmp_path, kwargs):
    tflite = convert16(om.depthwise(**kwargs), tmp_path / "dw.tflite")
    assert "DEPTHWISE_CONV_2D" in kinds(tflite)
    compile_and_check(tflite, tmp_path / "out", samples=6)


@pytest.mark.parametrize("builder, kwargs", [
    (om.avgpool, dict(pool=2)),
    (om.avgpool, dict(pool=3, strides=2, padding="same")),
    (om.maxpool, dict(pool=3, strides=2, padding="same")),
    (om.maxpool, dict(pool=(2, 3), strides=1)),
])
def test_pools_are_bit_exact(keras, tmp_path, builder, kwargs):
    tflite = convert16(builder(**kwargs), tmp_path / "pool.tflite")
    compile_and_check(tflite, tmp_path / "out", samples=6)


@pytest.mark.parametrize("keepdims", [False, True])
def test_mean_is_bit_exact(keras, tmp_path, keepdims):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 5, 3), name="input")
    x = keras.layers.Conv2D(4, 3, padding="same", bias_initializer=bias(keras, 1))(inputs)
    tflite = convert16(keras.Model(inputs, keras.layers.GlobalAveragePooling2D(keepdims=keepdims)(x)),
                       tmp_path / "mean.tflite")
    assert "MEAN" in kinds(tflite)
    compile_and_check(tflite, tmp_path / "out", samples=6)


@pytest.mark.parametrize("kind", ["sigmoid", "tanh"])
# 8 and 16: power-of-two input scales (LiteRT's other rescale) that reach every entry of the sigmoid table
@pytest.mark.parametrize("span", [1.0, 3.0, 8.0, 16.0])
def test_logistic_and_tanh_are_bit_exact(keras, tmp_path, kind, span):
    model = om.activation(kind, input_shape=(8, 32))
    tflite = convert(model, span * om.representative((8, 32), n=16), tmp_path / "act.tflite", activations="int16")
    assert kinds(tflite) == [om.ACTIVATION_OPS[kind]]
    compile_and_check(tflite, tmp_path / "out", samples=16)


@pytest.mark.parametrize("activation", [None, "relu"])
def test_add_is_bit_exact(keras, tmp_path, activation):
    tflite = convert16(om.add(activation=activation, input_shape=(6, 5, 3)), tmp_path / "add.tflite")
    assert "ADD" in kinds(tflite)
    compile_and_check(tflite, tmp_path / "out", samples=6)


@pytest.mark.parametrize("activation", [None, "relu"])
def test_mul_is_bit_exact(keras, tmp_path, activation):
    tflite = convert16(om.binary("MUL", "full", "conv", activation=activation), tmp_path / "mul.tflite")
    assert "MUL" in kinds(tflite)
    compile_and_check(tflite, tmp_path / "out", samples=6)


@pytest.mark.parametrize("op", ["ADD", "MUL"])
def test_int16_broadcasting_is_refused_by_name(keras, tmp_path, op):
    tflite = convert16(om.binary(op, "full", "hw1"), tmp_path / "b.tflite")
    with pytest.raises(ToolchainError, match=rf"{op}.*an int16 {op} with broadcasting .* is not supported"):
        compile_model(tflite, tmp_path / "out")


def test_an_int16_op_without_an_int16_kernel_is_refused_by_name(keras, tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 4), name="input")
    a = keras.layers.Dense(4, name="a")(inputs)
    b = keras.layers.Dense(4, name="b")(inputs)
    tflite = convert16(keras.Model(inputs, keras.layers.Concatenate(name="cat")([a, b])), tmp_path / "cat.tflite")
    with pytest.raises(ToolchainError, match=r"CONCATENATION.*is int16, only int8 is supported"):
        compile_model(tflite, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_int16_compiles_only_against_litert(keras, tmp_path):
    tflite = convert16(classifier(keras, 8, 4, 3, seed=0), tmp_path / "fc.tflite")
    with pytest.raises(ToolchainError, match="int16 activations compile only against LiteRT BUILTIN_REF"):
        compile_model(tflite, tmp_path / "out", reference="tflm")
    assert not (tmp_path / "out").exists()


def test_export_cli_writes_an_int16_model(keras, tmp_path):
    from toolchain.cli import main

    classifier(keras, 12, 6, 4, seed=0).save(tmp_path / "m.keras")
    np.save(tmp_path / "cal.npy", om.representative((12,), n=8))
    assert main(["export", str(tmp_path / "m.keras"), "-o", str(tmp_path / "m.tflite"),
                 "--calibration", str(tmp_path / "cal.npy"), "--activations", "int16"]) == 0
    g = load_tflite(tmp_path / "m.tflite")
    assert g.tensors[g.inputs[0]].dtype == "int16" and g.tensors[g.outputs[0]].dtype == "int16"
    with pytest.raises(ToolchainError, match="activations must be one of int8, int16"):
        convert(classifier(keras, 12, 6, 4, seed=0), om.representative((12,), n=4), tmp_path / "x.tflite",
                activations="int4")


@pytest.mark.emulator
@pytest.mark.skipif(not all(shutil.which(t) for t in ("cmake", "arm-none-eabi-gcc", "qemu-system-arm")),
                    reason="needs cmake, arm-none-eabi-gcc and qemu-system-arm")
def test_an_int16_audio_model_on_the_cortex_m4(keras, tmp_path):
    """A keyword-spotting-like model on 49x10 features: Conv2D, DepthwiseConv2D, pooling, Dense, Softmax."""
    from toolchain.boards import get_board
    from toolchain.pipeline import api

    keras.utils.set_random_seed(0)
    inputs = keras.Input((49, 10, 1), name="mfcc")
    x = keras.layers.Conv2D(8, (5, 3), strides=2, padding="same", activation="relu",
                            bias_initializer=bias(keras, 1))(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu", bias_initializer=bias(keras, 2))(x)
    x = keras.layers.AveragePooling2D((5, 5))(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(6, bias_initializer=bias(keras, 3))(x)
    tflite = convert16(keras.Model(inputs, keras.layers.Softmax()(x)), tmp_path / "kws16.tflite")
    run = api.deploy(tflite, get_board("mps2-an386"), tmp_path / "run", samples=2, progress=lambda _: None)
    assert run.bit_exact
    assert [op for op, _ in run.run.layers] == ["CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D",
                                                "FULLY_CONNECTED", "SOFTMAX"]
