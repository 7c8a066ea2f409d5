"""Every supported operator, compiled and compared bit-exactly with LiteRT BUILTIN_REF."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import op_models as om
from conftest import compile_and_check, convert

CASES = {
    "conv_same_relu": (om.conv2d, {}),
    "conv_valid_stride2": (om.conv2d, {"padding": "valid", "strides": 2, "activation": None}),
    "conv_5x3_relu6": (om.conv2d, {"kernel": (5, 3), "activation": "relu6"}),
    "conv_even_kernel_stride2_same": (om.conv2d, {"kernel": 4, "strides": 2}),
    "conv_dilated_same": (om.conv2d, {"dilation": 2, "activation": None}),
    "conv_dilated_2x3_valid": (om.conv2d, {"dilation": (2, 3), "padding": "valid"}),
    "depthwise_mult2_stride2": (om.depthwise, {}),
    "depthwise_valid": (om.depthwise, {"padding": "valid", "strides": 1, "depth_multiplier": 1}),
    "depthwise_dilated": (om.depthwise, {"strides": 1, "dilation": 2, "activation": "relu6"}),
    "dense": (om.dense, {}),
    "dense_relu": (om.dense, {"activation": "relu"}),
    "avgpool_valid": (om.avgpool, {}),
    "avgpool_same_stride1": (om.avgpool, {"pool": 3, "strides": 1, "padding": "same"}),
    "maxpool_valid": (om.maxpool, {}),
    "maxpool_same": (om.maxpool, {"pool": 3, "strides": 2, "padding": "same"}),
    "mean": (om.mean, {}),
    "add_residual": (om.add, {}),
    "add_relu": (om.add, {"activation": "relu"}),
    "softmax": (om.softmax, {}),
    "pad_folded_into_conv": (om.zero_padding, {"after": "conv"}),
    "pad_before_maxpool": (om.zero_padding, {"after": "maxpool"}),
    "concatenation": (om.concatenation, {}),
    "reshape_flatten": (om.reshape, {}),
    "reshape_to_3d": (om.reshape, {"kind": "reshape"}),
    "relu_standalone": (om.relu_standalone, {}),
    "two_outputs": (om.two_outputs, {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_bit_exact(case, tmp_path, keras):
    build, kwargs = CASES[case]
    model = build(**kwargs)
    tflite = convert(model, om.representative(model.input_shape[1:]), tmp_path / f"{case}.tflite")
    result = compile_and_check(tflite, tmp_path / "out", samples=8)
    assert result.plan.layers, "no layer generated"


def test_float_io_edges_quantize_dequantize(tmp_path, keras):
    """A model converted with float input/output keeps QUANTIZE/DEQUANTIZE at its edges."""
    model = om.conv2d()
    tflite = convert(model, om.representative(model.input_shape[1:]), tmp_path / "float_io.tflite", int8_io=False)
    result = compile_and_check(tflite, tmp_path / "out", samples=8)
    ops = [layer.op for layer in result.plan.layers]
    assert ops[0] == "QUANTIZE" and ops[-1] == "DEQUANTIZE", ops
    assert result.plan.inputs[0].dtype == "float32"


def test_pad_folding_removes_the_pad(tmp_path, keras):
    model = om.zero_padding(after="conv")
    tflite = convert(model, om.representative(model.input_shape[1:]), tmp_path / "pad.tflite")
    result = compile_and_check(tflite, tmp_path / "out")
    ops = [layer.op for layer in result.plan.layers]
    assert "PAD" not in ops and result.plan.ops_in_model > len(ops)


def test_two_outputs_are_named_in_signature_order(tmp_path, keras):
    model = om.two_outputs()
    tflite = convert(model, om.representative(model.input_shape[1:]), tmp_path / "two.tflite")
    result = compile_and_check(tflite, tmp_path / "out")
    names = result.plan.output_names
    assert sorted(names) == ["exit_1", "final"], names
    sizes = {o.name: o.bytes for o in result.plan.outputs}
    assert sizes["exit_1"] == sizes["final"] == 5


def test_agrees_with_tflite_micro_where_references_agree(tmp_path, keras):
    """tflite-micro and LiteRT BUILTIN_REF agree on conv/depthwise/add/pool/softmax: so do we."""
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime

    from toolchain.compiler.hostrun import HostModel

    model = om.add(activation="relu")
    tflite = convert(model, om.representative(model.input_shape[1:]), tmp_path / "m.tflite")
    compile_and_check(tflite, tmp_path / "out", samples=2)
    host = HostModel(tmp_path / "out")
    micro = runtime.Interpreter.from_file(str(tflite))
    rng = np.random.default_rng(5)
    for _ in range(5):
        x = rng.integers(-128, 128, size=(1, *model.input_shape[1:]), dtype=np.int8)
        micro.set_input(x, 0)
        micro.invoke()
        np.testing.assert_array_equal(host.run([x])[0][0], micro.get_output(0))


@pytest.mark.parametrize("kind", ["leading_channels", "strided_spatial"])
def test_strided_slice_bit_exact(kind, tmp_path, keras):
    """A channel slice (how the KWS T-RecX head reads its first 32 channels) and a strided crop."""
    from toolchain.tf import import_tf

    tf, _ = import_tf()

    class Slice(keras.layers.Layer):
        def call(self, x):
            if kind == "leading_channels":
                return x[..., :5]
            return tf.strided_slice(x, [0, 1, 0, 2], [1, 11, 12, 8], [1, 2, 3, 1])

    inputs = keras.Input(om.IMAGE[:2] + (8,))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.Conv2D(4, 1, name="after")(Slice(name="slice")(x))
    tflite = convert(keras.Model(inputs, x), om.representative(om.IMAGE[:2] + (8,)), tmp_path / "s.tflite")
    result = compile_and_check(tflite, tmp_path / "out")
    assert "STRIDED_SLICE" in [layer.op for layer in result.plan.layers]


def _relu_outputs(multiplier: int, shift: int, in_zp: int, out_zp: int) -> np.ndarray:
    """TFLite's QuantizedReluX on every int8 input: MultiplyByQuantizedMultiplier (SRDHM, then a rounding
    right shift) of x - zp_in, plus zp_out, clamped at zp_out (ReLU) and the int8 range."""
    x = (np.arange(-128, 128, dtype=np.int64) - in_zp) << max(shift, 0)
    high = (x * multiplier + (1 << 30)) >> 31
    right = max(-shift, 0)
    mask = (1 << right) - 1
    scaled = (high >> right) + ((high & mask) > ((mask >> 1) + (high < 0)))
    return np.clip(scaled + out_zp, max(out_zp, -128), 127)


def test_standalone_relu_divides_the_scales_as_c_floats_like_litert(tmp_path, keras):
    """LiteRT's ReluPrepare divides input by output scale as C floats; in double the multiplier's low bits move,
    and for the output scale picked here some int8 inputs then land on the other side of a rounding step."""
    import tflite_edit as te

    from toolchain.compiler import quant as q

    model = om.relu_standalone()
    tflite = convert(model, om.representative(model.input_shape[1:]), tmp_path / "relu.tflite")
    buf = tflite.read_bytes()
    relu = te.operator(te.unpack(buf), "RELU")
    src, dst = (te.tensor(te.unpack(buf), t).quantization for t in (relu.inputs[0], relu.outputs[0]))
    s_in, in_zp, out_zp = np.float32(src.scale[0]), int(src.zeroPoint[0]), int(dst.zeroPoint[0])

    def differing(s_out) -> int:
        as_float = q.quantize_multiplier(float(s_in / s_out))
        as_double = q.quantize_multiplier(float(s_in) / float(s_out))
        return int(np.sum(_relu_outputs(*as_float, in_zp, out_zp) != _relu_outputs(*as_double, in_zp, out_zp)))

    candidates = (np.float32(dst.scale[0] * (1 + k * 1e-5)) for k in range(20000))
    s_out = max(itertools.islice(candidates, 20000), key=differing)
    assert differing(s_out) >= 2

    def rescale(m):
        te.tensor(m, relu.outputs[0]).quantization.scale = [float(s_out)]

    edited = tmp_path / "relu_edited.tflite"
    edited.write_bytes(te.edit(buf, rescale))
    compile_and_check(edited, tmp_path / "out", samples=16)
