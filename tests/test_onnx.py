"""ONNX out (tf2onnx, checked with onnxruntime) and in (our converter for a CNN subset, then int8 PTQ)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import compile_and_check, have
from test_compress import exit_model
from toolchain.errors import ToolchainError
from toolchain.export.onnx_import import import_onnx, onnx_to_keras


# ---- export ------------------------------------------------------------------------------------------

def test_export_matches_keras_in_onnxruntime(tmp_path, keras):
    import onnxruntime as ort

    model = exit_model(keras)  # two outputs and the zoo's ChannelSlice
    x = np.random.default_rng(0).uniform(0, 1, (8, 8, 8, 1)).astype(np.float32)
    from toolchain.export.onnx_export import export_onnx

    result = export_onnx(model, tmp_path / "m.onnx", inputs=x)
    assert result.max_abs_diff <= 1e-5 and result.outputs == ("exit_1", "final")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"image": x})))
    for name, want in zip(model.output_names, model.predict(x, verbose=0)):
        np.testing.assert_allclose(got[name], want, atol=1e-5)
    assert onnx.load(str(tmp_path / "m.onnx")).opset_import[0].version == 17


def test_export_refuses_a_mismatch_and_writes_nothing(tmp_path, keras, monkeypatch):
    from toolchain.export import onnx_export

    monkeypatch.setattr(onnx_export, "max_difference", lambda *a: (0.5, ("final",)))
    with pytest.raises(ToolchainError, match="differs from the Keras model by 0.5"):
        onnx_export.export_onnx(exit_model(keras), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


# ---- import ------------------------------------------------------------------------------------------

def _init(name: str, array, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(array, dtype), name)


def _model(nodes, inits, input_shape, output: str, output_shape, opset: int = 17):
    graph = helper.make_graph(nodes, "test", [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, output_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def pytorch_like_cnn(seed: int = 0):
    """What torch.onnx.export writes for a small CNN: NCHW Conv/Relu, a depthwise Conv (group = channels),
    GlobalAveragePool, Flatten, Gemm (transB=1)."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="dw", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         strides=[2, 2], group=8),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "w3", "b3"], ["logits"], name="fc", transB=1),
    ]
    inits = [_init("w1", rng.normal(0, 0.3, (8, 3, 3, 3))), _init("b1", rng.normal(0, 0.1, 8)),
             _init("w2", rng.normal(0, 0.3, (8, 1, 3, 3))), _init("b2", rng.normal(0, 0.1, 8)),
             _init("w3", rng.normal(0, 0.3, (5, 8))), _init("b3", rng.normal(0, 0.1, 5))]
    return _model(nodes, inits, ["N", 3, 16, 16], "logits", ["N", 5])


def op_subset_cnn(seed: int = 0):
    """Every other supported op: BN, Clip (ReLU6), Pad, MaxPool, AveragePool ('same'), a 1x1 Conv, Add,
    Concat, Flatten of a 7x7 map (rows of the next MatMul reordered), MatMul + Add (-> Dense), Softmax."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", kernel_shape=[3, 3], strides=[2, 2],
                         auto_pad="SAME_UPPER"),
        helper.make_node("BatchNormalization", ["c1", "g", "be", "m", "v"], ["bn"], name="bn", epsilon=1e-3),
        helper.make_node("Clip", ["bn", "zero", "six"], ["r1"], name="relu6"),
        helper.make_node("Pad", ["r1", "pads"], ["p"], name="pad", mode="constant"),
        helper.make_node("MaxPool", ["p"], ["mp"], name="maxpool", kernel_shape=[2, 2], strides=[1, 1]),
        helper.make_node("AveragePool", ["mp"], ["ap"], name="avgpool", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["ap", "w2", "b2"], ["c2"], name="pw", kernel_shape=[1, 1]),
        helper.make_node("Add", ["c2", "ap"], ["add"], name="add"),
        helper.make_node("Concat", ["add", "mp"], ["cat"], name="concat", axis=1),
        helper.make_node("Flatten", ["cat"], ["flat"], name="flatten", axis=1),
        helper.make_node("MatMul", ["flat", "wm"], ["mm"], name="matmul"),
        helper.make_node("Add", ["mm", "bm"], ["fc"], name="bias"),
        helper.make_node("Softmax", ["fc"], ["probs"], name="softmax", axis=-1),
    ]
    inits = [_init("w1", rng.normal(0, 0.3, (8, 3, 3, 3))),
             _init("g", rng.uniform(0.5, 1.5, 8)), _init("be", rng.normal(0, 0.1, 8)),
             _init("m", rng.normal(0, 0.1, 8)), _init("v", rng.uniform(0.5, 1.5, 8)),
             _init("zero", 0.0), _init("six", 6.0), _init("pads", [0, 0, 1, 1, 0, 0, 1, 1], np.int64),
             _init("w2", rng.normal(0, 0.3, (8, 8, 1, 1))), _init("b2", rng.normal(0, 0.1, 8)),
             _init("wm", rng.normal(0, 0.05, (16 * 7 * 7, 6))), _init("bm", rng.normal(0, 0.1, 6))]
    return _model(nodes, inits, ["N", 3, 12, 12], "probs", ["N", 6])


def calibration(shape, n: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, *shape)).astype(np.float32)


@pytest.mark.parametrize("build, shape", [(pytorch_like_cnn, (3, 16, 16)), (op_subset_cnn, (3, 12, 12))],
                         ids=["pytorch-like", "op-subset"])
def test_import_matches_onnxruntime_quantizes_and_compiles_bit_exact(build, shape, tmp_path):
    result = import_onnx(build(), calibration(shape), tmp_path / "m.tflite")
    assert result.max_abs_diff <= 1e-4
    assert tuple(result.keras_model.inputs[0].shape[1:]) == (shape[1], shape[2], shape[0])  # NHWC
    compile_and_check(tmp_path / "m.tflite", tmp_path / "c", samples=4)


def test_depthwise_and_flatten_weights_are_transposed_right():
    """The converted model equals onnxruntime on inputs far from the calibration ones too."""
    import onnxruntime as ort

    model = op_subset_cnn(seed=3)
    keras_model = onnx_to_keras(model)
    x = calibration((3, 12, 12), n=4, seed=9) * 5
    want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    got = keras_model.predict(np.transpose(x, (0, 2, 3, 1)), verbose=0)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_unsupported_ops_are_listed_in_one_error():
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="grouped", kernel_shape=[1, 1], group=2),
        helper.make_node("LRN", ["c"], ["s"], name="gate", size=3),
        helper.make_node("Clip", ["s", "lo", "hi"], ["k"], name="hardtanh"),
        helper.make_node("Tanh", ["k"], ["y"], name="squash"),
    ]
    inits = [_init("w", rng.normal(0, 1, (4, 2, 1, 1))), _init("lo", -1.0), _init("hi", 1.0)]
    model = _model(nodes, inits, [1, 4, 6, 6], "y", [1, 4, 6, 6])
    with pytest.raises(ToolchainError) as err:
        onnx_to_keras(model)
    text = str(err.value)
    assert "4 ONNX node(s) cannot be converted" in text
    for fragment in ("'grouped': grouped convolution", "LRN 'gate': operator LRN is not supported",
                     "'hardtanh': only Clip(min=0, max)", "Tanh 'squash'"):
        assert fragment in text


def test_calibration_must_be_in_the_onnx_layout(tmp_path):
    with pytest.raises(ToolchainError, match=r"ONNX model's layout \(\[N, C, H, W\]"):
        import_onnx(pytorch_like_cnn(), calibration((16, 16, 3)), tmp_path / "m.tflite")


def test_cli_export_and_import(tmp_path, keras, capsys):
    from toolchain.cli import main
    from toolchain.compress.graph import save_keras

    save_keras(exit_model(keras), tmp_path / "m.keras")
    np.save(tmp_path / "cal.npy", np.random.default_rng(0).uniform(0, 1, (16, 8, 8, 1)).astype(np.float32))
    assert main(["export", str(tmp_path / "m.keras"), "-o", str(tmp_path / "m.tflite"), "--calibration",
                 str(tmp_path / "cal.npy"), "--onnx", str(tmp_path / "m.onnx")]) == 0
    assert "max |diff|" in capsys.readouterr().out
    assert (tmp_path / "m.tflite").stat().st_size > 0 and (tmp_path / "m.onnx").stat().st_size > 0

    onnx.save(pytorch_like_cnn(), str(tmp_path / "p.onnx"))
    np.save(tmp_path / "pcal.npy", calibration((3, 16, 16)))
    assert main(["import", str(tmp_path / "p.onnx"), "--calibration", str(tmp_path / "pcal.npy"),
                 "-o", str(tmp_path / "p.tflite"), "--keras", str(tmp_path / "p.keras")]) == 0
    assert "input 16x16x3 (NHWC)" in capsys.readouterr().out
    assert main(["import", str(tmp_path / "missing.onnx"), "--calibration", str(tmp_path / "pcal.npy"),
                 "-o", str(tmp_path / "x.tflite")]) == 2


@pytest.mark.emulator
@pytest.mark.skipif(not (have("qemu-system-arm") and have("arm-none-eabi-gcc")), reason="needs QEMU and arm gcc")
def test_imported_model_runs_on_the_emulator_bit_exact(tmp_path):
    from toolchain.boards import get_board
    from toolchain.pipeline.api import deploy

    from toolchain.verify.reference import ReferenceModel

    x = calibration((3, 16, 16))
    import_onnx(pytorch_like_cnn(), x, tmp_path / "m.tflite")
    quant = ReferenceModel(tmp_path / "m.tflite").inputs[0].quant  # the firmware takes int8 NHWC samples
    q = np.round(np.transpose(x[:4], (0, 2, 3, 1)) / quant.scale[0]) + quant.zero_point[0]
    result = deploy(tmp_path / "m.tflite", get_board("mps2-an386"), tmp_path / "run",
                    inputs=np.clip(q, -128, 127).astype(np.int8), progress=lambda _: None)
    assert len(result.run.samples) == 4
    assert result.bit_exact, [m.__dict__ for m in result.mismatches]
