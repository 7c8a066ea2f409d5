"""Unrolled recurrent keyword models (49 MFCC frames of 10 -> GRU / LSTM / SimpleRNN of 16 -> Dense(4)): the int8
ops their conversion writes (UNPACK of the frames, FULLY_CONNECTED, SPLIT / SPLIT_V of the gates, LOGISTIC, TANH,
MUL, ADD, SUB) compile bit-exact with LiteRT BUILTIN_REF, on the host and on the Cortex-M4; a fused (not unrolled)
LSTM is refused by name."""
from __future__ import annotations

import shutil

import pytest

import op_models as om
from conftest import compile_and_check, convert
from toolchain.compiler import compile_model
from toolchain.compiler.frontend import load_tflite
from toolchain.errors import ToolchainError

FRAMES = (49, 10)
# layer -> the multi-output ops its unrolled cell is written with
RNNS = {"GRU": {"UNPACK", "SPLIT", "SPLIT_V"}, "LSTM": {"UNPACK", "SPLIT"}, "SimpleRNN": {"UNPACK"}}


def keyword_rnn(keras, layer: str, unroll: bool = True, seed: int = 0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(FRAMES, batch_size=1, name="mfcc")
    x = getattr(keras.layers, layer)(16, unroll=unroll, name=layer.lower())(inputs)
    return keras.Model(inputs, keras.layers.Dense(4, name="classes")(x))


def rnn_tflite(keras, tmp_path, layer: str, unroll: bool = True):
    """The int8 model (convert_int8 retries the converter's occasional float SPLIT in these models)."""
    return convert(keyword_rnn(keras, layer, unroll), om.representative(FRAMES, n=16), tmp_path / f"{layer}.tflite")


@pytest.mark.parametrize("layer", RNNS)
def test_unrolled_rnn_is_bit_exact(keras, tmp_path, layer):
    tflite = rnn_tflite(keras, tmp_path, layer)
    kinds = {op.kind for op in load_tflite(tflite).ops}
    assert RNNS[layer] <= kinds, kinds
    result = compile_and_check(tflite, tmp_path / "out", samples=4)
    assert result.arena_bytes > 0


def test_a_fused_lstm_is_refused_with_the_way_out(keras, tmp_path):
    tflite = rnn_tflite(keras, tmp_path, "LSTM", unroll=False)
    with pytest.raises(ToolchainError, match=r"UNIDIRECTIONAL_SEQUENCE_LSTM .* is a fused recurrent layer") as err:
        compile_model(tflite, tmp_path / "out")
    assert "unroll=True" in err.value.hint
    assert not (tmp_path / "out").exists()


@pytest.mark.emulator
@pytest.mark.skipif(not all(shutil.which(t) for t in ("cmake", "arm-none-eabi-gcc", "qemu-system-arm")),
                    reason="needs cmake, arm-none-eabi-gcc and qemu-system-arm")
def test_gru_keyword_model_on_the_cortex_m4(keras, tmp_path):
    from toolchain.boards import get_board
    from toolchain.pipeline import api

    tflite = rnn_tflite(keras, tmp_path, "GRU")
    run = api.deploy(tflite, get_board("mps2-an386"), tmp_path / "run", samples=2, progress=lambda _: None)
    layers = [op for op, _ in run.run.layers]
    assert run.bit_exact and {"UNPACK", "SPLIT", "SPLIT_V"} <= set(layers)
