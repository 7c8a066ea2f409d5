"""SPLIT, SPLIT_V, UNPACK (several outputs, each its own arena tensor), PACK, GATHER with constant indices and
SLICE: bit-exact with LiteRT BUILTIN_REF over shapes, axes (negative too) and piece counts; what we do not
cover (non-constant split sizes or indices, an index out of range) is refused by name before anything is written."""
from __future__ import annotations

import json

import pytest

import op_models as om
import tflite_edit as te
from conftest import compile_and_check, convert
from toolchain.compiler import compile_model
from toolchain.compiler.frontend import load_tflite
from toolchain.errors import ToolchainError


def _model(keras, input_shape, body, seed=0):
    """Dense (so the op reads an int8 activation) -> body(x) -> a list of tensors, each through its own Dense,
    flattened and concatenated: every output of a multi-output op is read."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape, batch_size=1, name="input")
    x = keras.layers.Dense(input_shape[-1], name="mix")(inputs)
    parts = body(x)
    heads = [keras.layers.Flatten()(keras.layers.Dense(3, name=f"head{i}")(p)) for i, p in enumerate(parts)]
    out = heads[0] if len(heads) == 1 else keras.layers.Concatenate()(heads)
    return keras.Model(inputs, out)


def _tf():
    from toolchain.tf import import_tf

    return import_tf()[0]


def _convert(keras, tmp_path, input_shape, body, name="m"):
    model = _model(keras, input_shape, body)
    return convert(model, om.representative(input_shape, n=8), tmp_path / f"{name}.tflite")


def _kinds(tflite) -> list[str]:
    return [op.kind for op in load_tflite(tflite).ops]


@pytest.mark.parametrize("input_shape, pieces, axis", [
    ((6, 4), 3, 1),
    ((6, 4), 2, -1),
    ((4, 6, 3), 2, 2),
    ((4, 6, 3), 3, -1),
    ((4, 6, 3), 4, 1),
])
def test_split_is_bit_exact(keras, tmp_path, input_shape, pieces, axis):
    tf = _tf()
    lam = keras.layers.Lambda(lambda v: tf.split(v, pieces, axis=axis))
    tflite = _convert(keras, tmp_path, input_shape, lambda x: lam(x))
    assert _kinds(tflite).count("SPLIT") == 1
    compile_and_check(tflite, tmp_path / "out", samples=4)
    plan = json.loads((tmp_path / "out" / "model_plan.json").read_text())
    (split,) = [layer for layer in plan["layers"] if layer["op"] == "SPLIT"]
    assert len(split["outputs"]) == pieces
    written = [t for t in plan["tensors"] if t["first_layer"] == split["index"] and t["id"] is not None]
    spans = sorted((t["offset"], t["offset"] + t["bytes"]) for t in written)
    assert len(spans) == pieces and all(end <= nxt for (_, end), (nxt, _) in zip(spans, spans[1:])), spans


@pytest.mark.parametrize("input_shape, sizes, axis", [
    ((7, 5), [2, -1, 3], 1),
    ((4, 6, 3), [1, 2], -1),
    ((4, 6, 3), [3, 1, 2], 2),
])
def test_split_v_is_bit_exact(keras, tmp_path, input_shape, sizes, axis):
    tf = _tf()
    lam = keras.layers.Lambda(lambda v: tf.split(v, sizes, axis=axis))
    tflite = _convert(keras, tmp_path, input_shape, lambda x: lam(x))
    assert "SPLIT_V" in _kinds(tflite)
    compile_and_check(tflite, tmp_path / "out", samples=4)


@pytest.mark.parametrize("input_shape, axis", [((5, 4), 1), ((3, 5, 4), 2), ((3, 5, 4), -2), ((3, 5, 4), -1)])
def test_unpack_is_bit_exact(keras, tmp_path, input_shape, axis):
    tf = _tf()
    lam = keras.layers.Lambda(lambda v: tf.unstack(v, axis=axis))
    tflite = _convert(keras, tmp_path, input_shape, lambda x: lam(x))
    assert "UNPACK" in _kinds(tflite)
    compile_and_check(tflite, tmp_path / "out", samples=4)


@pytest.mark.parametrize("input_shape, count, axis", [((6,), 3, 1), ((4, 5), 2, 1), ((4, 5), 3, -1), ((3, 4), 2, 2)])
def test_pack_is_bit_exact(keras, tmp_path, input_shape, count, axis):
    tf = _tf()
    lam = keras.layers.Lambda(lambda vs: tf.stack(vs, axis=axis))

    def body(x):
        return [lam([keras.layers.ReLU()(x) if k % 2 else x for k in range(count)])]

    tflite = _convert(keras, tmp_path, input_shape, body)
    assert "PACK" in _kinds(tflite)
    compile_and_check(tflite, tmp_path / "out", samples=4)


@pytest.mark.parametrize("input_shape, indices, axis", [
    ((6, 4), [3, 0, 5, 5], 1),
    ((6, 4), [[1, 0], [2, 3]], -1),
    ((4, 6, 3), [2, 0], 2),
    ((4, 6, 3), 1, -2),
])
def test_gather_is_bit_exact(keras, tmp_path, input_shape, indices, axis):
    tf = _tf()
    lam = keras.layers.Lambda(lambda v: tf.gather(v, indices, axis=axis))
    tflite = _convert(keras, tmp_path, input_shape, lambda x: [lam(x)])
    assert "GATHER" in _kinds(tflite)
    compile_and_check(tflite, tmp_path / "out", samples=4)


@pytest.mark.parametrize("input_shape, begin, size", [
    ((6, 4), [0, 1, 0], [1, 4, -1]),
    ((4, 6, 3), [0, 1, 2, 1], [1, 2, -1, 2]),
])
def test_slice_is_bit_exact(keras, tmp_path, input_shape, begin, size):
    tf = _tf()
    lam = keras.layers.Lambda(lambda v: tf.slice(v, begin, size))
    tflite = _convert(keras, tmp_path, input_shape, lambda x: [lam(x)])
    assert "SLICE" in _kinds(tflite)
    compile_and_check(tflite, tmp_path / "out", samples=4)


def _edited(tflite, kind, change):
    """The model with `change(model, op)` applied to its first `kind` operator, written next to it."""
    def edit(model):
        change(model, te.operator(model, kind))

    path = tflite.with_name(f"edited-{tflite.name}")
    path.write_bytes(te.edit(tflite.read_bytes(), edit))
    return path


def test_an_out_of_range_gather_index_is_refused_before_compiling(keras, tmp_path):
    tf = _tf()
    lam = keras.layers.Lambda(lambda v: tf.gather(v, [1, 2], axis=1))
    tflite = _convert(keras, tmp_path, (6, 4), lambda x: [lam(x)])

    def change(model, op):
        indices = te.tensor(model, op.inputs[1])
        buffer = model.buffers[indices.buffer]
        data = buffer.data.copy()
        data[4:8] = [6, 0, 0, 0]  # the second int32 index becomes 6, one past the end of that axis
        buffer.data = data

    bad = _edited(tflite, "GATHER", change)
    with pytest.raises(ToolchainError, match=r"GATHER .*index 6 is out of range for a dimension of 6 \(axis 1\)"):
        compile_model(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_non_constant_split_sizes_are_refused(keras, tmp_path):
    tf = _tf()
    lam = keras.layers.Lambda(lambda v: tf.split(v, [2, 4], axis=1))
    tflite = _convert(keras, tmp_path, (6, 4), lambda x: lam(x))

    def change(model, op):
        op.inputs = [op.inputs[0], op.inputs[0], op.inputs[2]]  # the sizes now come from an activation

    with pytest.raises(ToolchainError, match="SPLIT_V .*only constant split sizes are supported"):
        compile_model(_edited(tflite, "SPLIT_V", change), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_split_with_an_output_of_the_wrong_shape_is_refused(keras, tmp_path):
    tf = _tf()
    lam = keras.layers.Lambda(lambda v: tf.split(v, 2, axis=1))
    tflite = _convert(keras, tmp_path, (6, 4), lambda x: lam(x))

    def change(model, op):
        out = te.tensor(model, op.outputs[1])
        out.shape = [*out.shape[:-1], 3]  # the kernel would write 12 bytes into its 9

    wrong = r"SPLIT .*output '.*' has shape \[1, 3, 3\], but its input gives \[1, 3, 4\]"
    with pytest.raises(ToolchainError, match=wrong):
        compile_model(_edited(tflite, "SPLIT", change), tmp_path / "out")
