"""TRANSPOSE (issue 17): a constant permutation up to 4-D, bit-exact with LiteRT BUILTIN_REF (pure data movement),
anything else refused by name."""
from __future__ import annotations

import shutil

import pytest

import op_models as om
from conftest import compile_and_check, convert
from toolchain.compiler import compile_model
from toolchain.compiler.frontend import load_tflite
from toolchain.errors import ToolchainError


def transpose_model(keras, input_shape, perm, seed=0):
    """conv (so the input is an activation the converter keeps int8) -> tf.transpose(perm) -> conv."""
    from toolchain.tf import import_tf

    tf, _ = import_tf()
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape, batch_size=1, name="input")
    x = keras.layers.Dense(input_shape[-1], name="mix")(inputs)
    x = keras.layers.Lambda(lambda v: tf.transpose(v, perm), name="transpose")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="out")(x))


@pytest.mark.parametrize("input_shape, perm", [
    ((5, 7, 3), (0, 2, 1, 3)),
    ((5, 7, 3), (0, 3, 1, 2)),
    ((5, 7, 3), (0, 2, 3, 1)),
    ((6, 4), (0, 2, 1)),
    ((4, 3, 2), (0, 1, 3, 2)),
])
def test_transpose_is_bit_exact(keras, tmp_path, input_shape, perm):
    tflite = convert(transpose_model(keras, input_shape, perm), om.representative(input_shape, n=8),
                     tmp_path / "t.tflite")
    assert "TRANSPOSE" in {op.kind for op in load_tflite(tflite).ops}
    compile_and_check(tflite, tmp_path / "out", samples=4)


def test_a_permutation_over_five_axes_is_refused_before_compiling(keras, tmp_path):
    tflite = convert(transpose_model(keras, (2, 3, 4, 5), (0, 4, 1, 2, 3)), om.representative((2, 3, 4, 5), n=4),
                     tmp_path / "t5.tflite")
    with pytest.raises(ToolchainError, match=r"rank 5 \(shape \[1, 5, 2, 3, 4\]\); activations may have at most 4"):
        compile_model(tflite, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.emulator
@pytest.mark.skipif(not all(shutil.which(t) for t in ("cmake", "arm-none-eabi-gcc", "qemu-system-arm")),
                    reason="needs cmake, arm-none-eabi-gcc and qemu-system-arm")
def test_transpose_on_the_cortex_m4(keras, tmp_path):
    from toolchain.boards import get_board
    from toolchain.pipeline import api

    tflite = convert(transpose_model(keras, (5, 7, 3), (0, 3, 1, 2)), om.representative((5, 7, 3), n=8),
                     tmp_path / "t.tflite")
    run = api.deploy(tflite, get_board("mps2-an386"), tmp_path / "run", samples=2, progress=lambda _: None)
    assert run.bit_exact and "TRANSPOSE" in [op for op, _ in run.run.layers]
