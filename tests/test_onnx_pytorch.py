"""ONNX import of the graphs PyTorch's exporters write (built with onnx.helper: torch is not a dependency).

Three styles of the same network: TorchScript (`torch.onnx.export`, opset 13 and 17, batch fixed to 1 or
dynamic 'N'; BatchNormalization folded into the Conv, Flatten or view + Gemm) and dynamo (`dynamo=True`, opset
18, batch 1: BatchNormalization nodes, weights behind Identity nodes, ReduceMean with its axes as an
input, Reshape + MatMul of a transposed weight). Three families (a DS-CNN, a ResNet-8, a
MobileNetV2-0.35), each imported, compared with onnxruntime on other inputs than the calibration ones, and
compiled bit-exact with LiteRT BUILTIN_REF.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import compile_and_check, have
from toolchain.errors import ToolchainError
from toolchain.export.onnx_import import import_onnx, load_onnx, onnx_to_keras


@dataclass(frozen=True)
class Style:
    opset: int
    batch: int | str
    dynamo: bool

    @property
    def id(self) -> str:
        return f"{'dynamo' if self.dynamo else 'torchscript'}{self.opset}-batch{self.batch}"


STYLES = [Style(13, 1, False), Style(13, "N", False), Style(17, 1, False), Style(17, "N", False),
          Style(18, 1, True)]


class Graph:
    """Writes nodes the way the chosen exporter does."""

    def __init__(self, style: Style, seed: int = 0):
        self.style, self.rng = style, np.random.default_rng(seed)
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, base: str) -> str:
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, value, dtype=np.float32, wrap: int = 0) -> str:
        """An initializer; the dynamo style passes `wrap` Identity nodes in front of it."""
        name = self.name("param")
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        for _ in range(wrap if self.style.dynamo else 0):
            out = self.name("identity")
            self.nodes.append(helper.make_node("Identity", [name], [out], name=out))
            name = out
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k, stride: int = 1, pad=None, group: int = 1, act: str = "relu"):
        kh, kw = (k, k) if isinstance(k, int) else k
        ph, pw = (kh // 2, kw // 2) if pad is None else pad
        w = self.rng.normal(0, np.sqrt(2.0 / (cin // group * kh * kw)), (cout, cin // group, kh, kw))
        attrs = dict(kernel_shape=[kh, kw], strides=[stride, stride], pads=[ph, pw, ph, pw], group=group)
        if self.style.dynamo:  # bias-free conv, then the BatchNormalization PyTorch keeps as a node
            y = self.node("Conv", [x, self.const(w, wrap=1 + self.count % 2)], **attrs)
            bn = [self.const(self.rng.uniform(0.5, 1.5, cout)), self.const(self.rng.normal(0, 0.1, cout)),
                  self.const(self.rng.normal(0, 0.1, cout)), self.const(self.rng.uniform(0.5, 1.5, cout))]
            y = self.node("BatchNormalization", [y, *bn], epsilon=1e-5)
        else:  # torch.onnx.export folds BatchNormalization into the conv's weights and bias
            y = self.node("Conv", [x, self.const(w), self.const(self.rng.normal(0, 0.1, cout))], **attrs)
        if act == "relu":
            return self.node("Relu", [y])
        if act == "relu6":
            return self.node("Clip", [y, self.const(0.0), self.const(6.0)])
        return y

    def classifier(self, x: str, channels: int, classes: int, pooled: bool = False, keepdims: int = 1,
                   gemm: bool = False, view: bool = False) -> str:
        """Global average pool, flatten, linear. TorchScript: torch.flatten, or with `view`
        x.view(x.size(0), -1) (shape arithmetic when the batch is dynamic, a constant when fixed). Dynamo:
        adaptive_avg_pool2d (keepdims=1) + view + a MatMul of the transposed weight (or Gemm), or
        x.mean((2, 3)) (keepdims=0)."""
        w, b = self.rng.normal(0, 0.3, (classes, channels)), self.rng.normal(0, 0.1, classes)
        if view and not self.style.dynamo:
            x = self.node("GlobalAveragePool", [x])
            if self.style.batch == 1:
                shape = self.const([1, -1], np.int64)
            else:
                size = self.node("Gather", [self.node("Shape", [x]), self.const(0, np.int64)], axis=0)
                size = self.node("Unsqueeze", [size, self.const([0], np.int64)])
                shape = self.node("Concat", [size, self.const([-1], np.int64)], axis=0)
            x = self.node("Reshape", [x, shape])
            return self.node("Gemm", [x, self.const(w), self.const(b)], alpha=1.0, beta=1.0, transB=1)
        if not self.style.dynamo or gemm:
            if self.style.dynamo:
                x = self.node("ReduceMean", [x, self.const([2, 3], np.int64)], keepdims=keepdims)
            else:
                x = self.node("Flatten", [x if pooled else self.node("GlobalAveragePool", [x])], axis=1)
            return self.node("Gemm", [x, self.const(w, wrap=2), self.const(b)], alpha=1.0, beta=1.0, transB=1)
        x = x if pooled else self.node("ReduceMean", [x, self.const([-1, -2], np.int64)], keepdims=1)
        x = self.node("Reshape", [x, self.const([1, channels], np.int64)])
        x = self.node("MatMul", [x, self.node("Transpose", [self.const(w, wrap=1)], perm=[1, 0])])
        return self.node("Add", [x, self.const(b)])

    def model(self, input_shape: tuple, output: str, classes: int):
        batch = self.style.batch
        graph = helper.make_graph(
            self.nodes, "torch_jit" if not self.style.dynamo else "main_graph",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, *input_shape])],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, [batch, classes])], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.style.opset)],
                                  producer_name="pytorch")
        model.ir_version = 8 if self.style.opset < 18 else 9
        onnx.checker.check_model(model)
        return model


def ds_cnn(style: Style):
    """DS-CNN (MLPerf Tiny KWS) on a 20x10 MFCC map: 10x4 stride-2 conv, two depthwise-separable blocks."""
    g, c = Graph(style), 16
    x = g.conv("input", 1, c, (10, 4), stride=2, pad=(5, 1))
    for _ in range(2):
        x = g.conv(x, c, c, 3, group=c)
        x = g.conv(x, c, c, 1)
    if not style.dynamo:
        x = g.node("AveragePool", [x], kernel_shape=[11, 5], strides=[11, 5])  # nn.AvgPool2d(x.shape[-2:])
    return g.model((1, 20, 10), g.classifier(x, c, 12, pooled=not style.dynamo), 12), (1, 20, 10)


def resnet8(style: Style):
    """ResNet-8 (MLPerf Tiny image classification): three residual stacks, 1x1 stride-2 shortcuts."""
    g = Graph(style, seed=1)
    x = g.conv("input", 3, 8, 3)
    for cin, cout, stride in ((8, 8, 1), (8, 16, 2), (16, 24, 2)):
        y = g.conv(x, cin, cout, 3, stride=stride)
        y = g.conv(y, cout, cout, 3, act="none")
        shortcut = x if stride == 1 else g.conv(x, cin, cout, 1, stride=stride, act="none")
        x = g.node("Relu", [g.node("Add", [y, shortcut])])
    return g.model((3, 16, 16), g.classifier(x, 24, 10, keepdims=0, gemm=True, view=True), 10), (3, 16, 16)


def mobilenet_v2(style: Style):
    """MobileNetV2 at width 0.35: a stride-2 stem, inverted residuals (expand, depthwise, linear project),
    ReLU6 as Clip(0, 6), the last 1x1 conv."""
    g = Graph(style, seed=2)
    x, cin = g.conv("input", 3, 8, 3, stride=2, act="relu6"), 8
    for expand, cout, stride in ((1, 8, 1), (6, 8, 2), (6, 8, 1), (6, 16, 2)):
        hidden = cin * expand
        y = x if expand == 1 else g.conv(x, cin, hidden, 1, act="relu6")
        y = g.conv(y, hidden, hidden, 3, stride=stride, group=hidden, act="relu6")
        y = g.conv(y, hidden, cout, 1, act="none")
        x, cin = (g.node("Add", [x, y]) if stride == 1 and cin == cout else y), cout
    x = g.conv(x, cin, 32, 1, act="relu6")
    return g.model((3, 16, 16), g.classifier(x, 32, 10), 10), (3, 16, 16)


def calibration(shape, n: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, *shape)).astype(np.float32)


def onnxruntime_outputs(model, x: np.ndarray) -> np.ndarray:
    """Sample by sample, as a fixed-batch model requires."""
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {"input": x[i:i + 1]})[0] for i in range(len(x))])


def assert_keras_matches_onnxruntime(keras_model, model, shape, atol: float = 1e-4):
    x = calibration(shape, n=6, seed=7) * 2  # not the calibration samples
    got = keras_model.predict(np.transpose(x, (0, 2, 3, 1)) if x.ndim == 4 else x, verbose=0)
    want = onnxruntime_outputs(model, x)
    got = np.transpose(got, (0, 3, 1, 2)) if got.ndim == 4 else got
    np.testing.assert_allclose(got, want, atol=atol, rtol=1e-4)


FAMILIES = {"ds_cnn": ds_cnn, "resnet8": resnet8, "mobilenet_v2": mobilenet_v2}


@pytest.mark.parametrize("style", STYLES, ids=[s.id for s in STYLES])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_pytorch_export_imports_and_compiles_bit_exact(family, style, tmp_path):
    model, shape = FAMILIES[family](style)
    op_types = {n.op_type for n in model.graph.node}
    if style.dynamo:
        assert {"Identity", "BatchNormalization", "ReduceMean"} <= op_types
    if family == "resnet8" and style.batch == "N":  # x.view(x.size(0), -1) with a dynamic batch
        assert {"Shape", "Gather", "Unsqueeze", "Concat", "Reshape"} <= op_types
    result = import_onnx(model, calibration(shape), tmp_path / "m.tflite")
    assert result.max_abs_diff <= 1e-4
    assert_keras_matches_onnxruntime(result.keras_model, model, shape)
    if style.dynamo:  # every BatchNormalization folded into its Conv
        assert not [layer for layer in result.keras_model.layers if "BatchNormalization" in type(layer).__name__]
    compile_and_check(tmp_path / "m.tflite", tmp_path / "c", samples=3)


# ---- the other operators PyTorch CNNs use ------------------------------------------------------------

def activations_and_arithmetic():
    """HardSwish, a squeeze-excitation gate (GlobalAveragePool, 1x1 Conv, HardSigmoid, Mul broadcast),
    Sigmoid, Mul by a per-channel constant, Sub/Div/Add of scalars, a standalone BatchNormalization,
    Transpose (H <-> W), MaxPool, Pad, AveragePool, Sub of two maps, Concat, Flatten, Gemm."""
    g = Graph(Style(17, 1, False), seed=3)
    x = g.node("HardSwish", [g.conv("input", 3, 8, 3, act="none")])
    gate = g.conv(g.node("GlobalAveragePool", [x]), 8, 8, 1, act="none")
    x = g.node("Mul", [x, g.node("HardSigmoid", [gate], alpha=1.0 / 6.0, beta=0.5)])
    x = g.node("Sigmoid", [x])
    x = g.node("Mul", [g.const(g.rng.uniform(0.5, 2.0, (1, 8, 1, 1))), x])
    x = g.node("Div", [g.node("Sub", [x, g.const(0.25)]), g.const(2.0)])
    bn = [g.const(g.rng.uniform(0.5, 1.5, 8)), g.const(g.rng.normal(0, 0.1, 8)), g.const(g.rng.normal(0, 0.1, 8)),
          g.const(g.rng.uniform(0.5, 1.5, 8))]
    x = g.node("BatchNormalization", [x, *bn], epsilon=1e-5)
    x = g.node("Transpose", [x], perm=[0, 1, 3, 2])  # [1, 8, 12, 8]
    x = g.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])  # [1, 8, 6, 4]
    x = g.node("Pad", [x, g.const([0, 0, 1, 1, 0, 0, 1, 1], np.int64)], mode="constant")
    pooled = g.node("AveragePool", [x], kernel_shape=[3, 3], strides=[1, 1])  # [1, 8, 6, 4]
    diff = g.node("Sub", [g.conv(pooled, 8, 8, 1, act="none"), pooled])
    x = g.node("Add", [g.node("Concat", [diff, pooled], axis=1), g.const(0.5)])
    x = g.node("Flatten", [x], axis=1)
    w, b = g.rng.normal(0, 0.1, (5, 16 * 6 * 4)), g.rng.normal(0, 0.1, 5)
    return g.model((3, 8, 12), g.node("Gemm", [x, g.const(w), g.const(b)], transB=1), 5), (3, 8, 12)


def test_activations_and_arithmetic_import_and_compile_bit_exact(tmp_path):
    model, shape = activations_and_arithmetic()
    result = import_onnx(model, calibration(shape), tmp_path / "m.tflite")
    assert_keras_matches_onnxruntime(result.keras_model, model, shape)
    kinds = {type(layer).__name__ for layer in result.keras_model.layers}
    assert {"Rescaling", "DepthwiseConv2D", "Multiply", "Subtract", "Permute", "BatchNormalization"} <= kinds
    compile_and_check(tmp_path / "m.tflite", tmp_path / "c", samples=3)


def upsampling():
    """Resize nearest (scales, as F.interpolate(scale_factor=2)) and linear (sizes, half-pixel), and
    ConvTranspose with kernel = stride, kernel > stride with padding and output_padding, kernel < stride."""
    g = Graph(Style(17, 1, False), seed=4)

    def deconv(x, cin, cout, k, stride, pads=(0, 0), extra=(0, 0)):
        w = g.rng.normal(0, 0.3, (cin, cout, k, k))
        return g.node("ConvTranspose", [x, g.const(w), g.const(g.rng.normal(0, 0.1, cout))], kernel_shape=[k, k],
                      strides=[stride, stride], pads=[pads[0], pads[1], pads[0], pads[1]], output_padding=list(extra))

    nearest = g.node("Resize", ["input", "", g.const([1, 1, 2, 2])], mode="nearest",
                     coordinate_transformation_mode="asymmetric", nearest_mode="floor")  # [1, 4, 10, 12]
    wide = deconv(nearest, 4, 6, 3, 2, pads=(1, 1), extra=(1, 1))  # [1, 6, 20, 24]
    doubled = g.node("Add", [deconv("input", 4, 4, 2, 2), deconv("input", 4, 4, 4, 2, pads=(1, 1))])  # 10x12
    linear = g.node("Resize", [doubled, "", "", g.const([1, 4, 20, 24], np.int64)], mode="linear",
                    coordinate_transformation_mode="pytorch_half_pixel")
    sparse = deconv("input", 4, 2, 1, 2)  # [1, 2, 9, 11]: rows between the inputs get the bias only
    pooled = [g.node("GlobalAveragePool", [v]) for v in (g.node("Concat", [wide, linear], axis=1), sparse)]
    x = g.node("Flatten", [g.node("Concat", pooled, axis=1)], axis=1)
    w, b = g.rng.normal(0, 0.3, (3, 12)), g.rng.normal(0, 0.1, 3)
    return g.model((4, 5, 6), g.node("Gemm", [x, g.const(w), g.const(b)], transB=1), 3), (4, 5, 6)


def tflite_ops(path) -> set[str]:
    from ai_edge_litert.interpreter import Interpreter

    return {op["op_name"] for op in Interpreter(model_path=str(path))._get_ops_details()}


def test_resize_and_conv_transpose_import_to_int8(tmp_path):
    """Compiled by kernels being written elsewhere (RESIZE_*, TRANSPOSE_CONV): import and float match here."""
    model, shape = upsampling()
    result = import_onnx(model, calibration(shape), tmp_path / "m.tflite")
    assert_keras_matches_onnxruntime(result.keras_model, model, shape)
    assert {"RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR", "TRANSPOSE_CONV"} <= tflite_ops(tmp_path / "m.tflite")


def test_unsupported_forms_are_listed_in_one_error():
    g = Graph(Style(18, 1, False))
    x = g.node("Div", ["input", g.node("Relu", ["input"])])
    x = g.node("ConvTranspose", [x, g.const(np.ones((4, 4, 3, 3)))], kernel_shape=[3, 3], dilations=[2, 2])
    x = g.node("Resize", [x, "", g.const([1, 1, 1.5, 1.5])], mode="cubic")
    x = g.node("ReduceMean", [x, g.const([1], np.int64)], keepdims=1)
    x = g.node("Transpose", [x], perm=[1, 0, 2, 3])
    x = g.node("Mul", [x, g.const(np.ones((1, 1, 6, 6)))])
    model = g.model((4, 6, 6), g.node("Flatten", [x], axis=1), 36)
    with pytest.raises(ToolchainError) as err:
        onnx_to_keras(model)
    text = str(err.value)
    assert "7 ONNX node(s) cannot be converted" in text  # Resize has two problems
    for fragment in ("division of two tensors", "dilations are not supported", "mode/coordinate_transformation_mode",
                     "whole factors", "only the mean over H and W", "only a permutation of the C, H, W axes",
                     "a constant of shape [1, 1, 6, 6]"):
        assert fragment in text


# ---- external data -----------------------------------------------------------------------------------

def test_dynamo_export_with_external_data_through_the_cli(tmp_path, capsys):
    from toolchain.cli import main

    model, shape = mobilenet_v2(Style(18, 1, True))
    (tmp_path / "model").mkdir()
    onnx.save_model(model, str(tmp_path / "model" / "m.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="m.onnx.data", size_threshold=0)
    assert (tmp_path / "model" / "m.onnx.data").stat().st_size > 4 * 8 * 3 * 3 * 3
    np.save(tmp_path / "cal.npy", calibration(shape))
    assert main(["import", str(tmp_path / "model" / "m.onnx"), "--calibration", str(tmp_path / "cal.npy"),
                 "-o", str(tmp_path / "m.tflite")]) == 0
    assert "input 16x16x3 (NHWC)" in capsys.readouterr().out
    assert (tmp_path / "m.tflite").read_bytes()[4:8] == b"TFL3"


def _with_location(tmp_path, location: str):
    """A model whose first weight claims its data lives at `location`."""
    model, _ = ds_cnn(Style(17, 1, False))
    (tmp_path / "model").mkdir(exist_ok=True)
    onnx.save_model(model, str(tmp_path / "model" / "m.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="m.onnx.data", size_threshold=0)
    proto = onnx.load(str(tmp_path / "model" / "m.onnx"), load_external_data=False)
    for entry in proto.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = location
    (tmp_path / "model" / "m.onnx").write_bytes(proto.SerializeToString())
    return tmp_path / "model" / "m.onnx"


@pytest.mark.parametrize("escape", ["parent", "absolute", "symlink"])
def test_external_data_outside_the_model_directory_is_refused(escape, tmp_path):
    secret = tmp_path / "secret.data"
    secret.write_bytes(b"\0" * 4096)
    location = {"parent": "../secret.data", "absolute": str(secret), "symlink": "link.data"}[escape]
    path = _with_location(tmp_path, location)
    if escape == "symlink":
        os.symlink(secret, tmp_path / "model" / "link.data")
    refusal = r"external data location '.*' is not a file inside the model's directory .*; refusing to read it"
    with pytest.raises(ToolchainError, match=refusal):
        load_onnx(path)
    assert load_onnx(_with_location(tmp_path, "m.onnx.data")).graph.initializer[0].raw_data  # the honest file


@pytest.mark.emulator
@pytest.mark.skipif(not (have("qemu-system-arm") and have("arm-none-eabi-gcc")), reason="needs QEMU and arm gcc")
def test_imported_pytorch_ops_run_on_the_emulator_bit_exact(tmp_path):
    from toolchain.boards import get_board
    from toolchain.pipeline.api import deploy
    from toolchain.verify.reference import ReferenceModel

    model, shape = activations_and_arithmetic()
    x = calibration(shape)
    import_onnx(model, x, tmp_path / "m.tflite")
    quant = ReferenceModel(tmp_path / "m.tflite").inputs[0].quant  # the firmware takes int8 NHWC samples
    q = np.round(np.transpose(x[:3], (0, 2, 3, 1)) / quant.scale[0]) + quant.zero_point[0]
    result = deploy(tmp_path / "m.tflite", get_board("mps2-an386"), tmp_path / "run",
                    inputs=np.clip(q, -128, 127).astype(np.int8), progress=lambda _: None)
    assert len(result.run.samples) == 3
    assert result.bit_exact, [m.__dict__ for m in result.mismatches]
