"""Bad input is refused with a clear message, and nothing is written."""
from __future__ import annotations

import pytest

import op_models as om
from conftest import convert
from toolchain.cli import main
from toolchain.compiler import compile_model
from toolchain.errors import ModelError, UnsupportedOpsError


def test_not_a_flatbuffer(tmp_path, capsys):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"this is not a model")
    assert main(["compile", str(bad), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "not a TFLite flatbuffer" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_truncated_model(tmp_path, keras):
    model = om.conv2d()
    good = convert(model, om.representative(model.input_shape[1:]), tmp_path / "good.tflite")
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    with pytest.raises(ModelError, match="corrupt or truncated"):
        compile_model(cut, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        compile_model(tmp_path / "nope.tflite", tmp_path / "out")


def test_float_model_is_refused(tmp_path, keras):
    from toolchain.tf import import_tf

    tf, _ = import_tf()
    model = om.conv2d()
    path = tmp_path / "float.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    with pytest.raises(ModelError, match="not fully int8-quantized") as err:
        compile_model(path, tmp_path / "out")
    assert "representative dataset" in str(err.value)


def test_every_unsupported_op_is_listed_before_writing(tmp_path, keras):
    from toolchain.tf import import_tf

    tf, _ = import_tf()
    inputs = keras.Input((8, 8, 4), batch_size=1)  # a fixed batch: no SHAPE/PACK around the transposed conv
    a = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    b = keras.layers.Lambda(lambda v: tf.nn.depth_to_space(v, 2))(keras.layers.Conv2D(16, 1)(inputs))
    c = keras.layers.Lambda(tf.math.abs)(keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same")(a))
    model = keras.Model(inputs, keras.layers.Concatenate()([b, keras.layers.Activation("gelu")(c)]))
    tflite = convert(model, om.representative((8, 8, 4)), tmp_path / "m.tflite")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user file")
    with pytest.raises(UnsupportedOpsError) as err:
        compile_model(tflite, out)
    kinds = " ".join(err.value.problems)
    wanted = ("DEPTH_TO_SPACE", "ABS", "GELU")
    assert set(wanted) <= {k for k in wanted if k in kinds}, kinds
    assert len(err.value.problems) == 3
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_cli_compile_and_check(tmp_path, capsys, keras):
    model = om.two_outputs()
    tflite = convert(model, om.representative(model.input_shape[1:]), tmp_path / "m.tflite")
    assert main(["compile", str(tflite), "-o", str(tmp_path / "out"), "--check", "3"]) == 0
    out = capsys.readouterr().out
    assert "bit-exact: 3 random input(s)" in out
    assert "arena" in out and "CONV_2D" in out
    for name in ("model.c", "model.h", "model_plan.json", "kernels/tm_nn.h", "kernels/tm_conv2d_s8.c"):
        assert (tmp_path / "out" / name).is_file(), name
