"""convert_int8 gives deterministic, fully int8 models with the op each test builder targets."""
import numpy as np
import pytest

import op_models
from toolchain.errors import ToolchainError
from toolchain.export.tflite import convert_int8


def _interpreter(flatbuffer):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    return Interpreter(model_content=flatbuffer,
                       experimental_op_resolver_type=OpResolverType.BUILTIN_REF)


def _convert(model, **kwargs):
    return convert_int8(model, op_models.representative(model.input_shape[1:]), **kwargs)


VARIANTS = [
    ("conv2d", {}),
    ("conv2d", {"kernel": (3, 1), "strides": 2, "padding": "valid", "activation": "relu6"}),
    ("conv2d", {"kernel": 5, "dilation": 2, "activation": None}),
    ("depthwise", {}),
    ("depthwise", {"strides": 1, "dilation": 2, "padding": "valid"}),
    ("dense", {"activation": "relu"}),
    ("avgpool", {"pool": 3, "strides": 2, "padding": "same"}),
    ("maxpool", {}),
    ("mean", {}),
    ("add", {"activation": "relu"}),
    ("softmax", {}),
    ("zero_padding", {"after": "conv"}),
    ("zero_padding", {"after": "maxpool"}),
    ("concatenation", {}),
    ("reshape", {"kind": "flatten"}),
    ("reshape", {"kind": "reshape"}),
    ("two_outputs", {}),
    ("relu_standalone", {}),
]


@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=lambda v: str(v) if v else "default")
def test_builder_converts_to_full_int8_with_its_op(name, kwargs):
    builder, op = op_models.BUILDERS[name]
    interpreter = _interpreter(_convert(builder(**kwargs)))
    ops = [o["op_name"] for o in interpreter._get_ops_details()]
    assert op in ops
    assert not {"SPACE_TO_BATCH_ND", "SHAPE", "QUANTIZE", "DEQUANTIZE"} & set(ops), ops
    kinds = {np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}
    assert kinds <= {"int8", "int32"}, kinds
    interpreter.allocate_tensors()
    interpreter.invoke()


def test_two_outputs_keep_their_names_in_the_signature():
    interpreter = _interpreter(_convert(op_models.two_outputs()))
    assert interpreter.get_signature_list()["serving_default"]["outputs"] == ["exit_1", "final"]


def test_conversion_is_deterministic_and_written_atomically(tmp_path):
    first = _convert(op_models.conv2d(seed=3), path=tmp_path / "m.tflite")
    second = _convert(op_models.conv2d(seed=3))
    assert first == second
    assert (tmp_path / "m.tflite").read_bytes() == first
    assert [p.name for p in tmp_path.iterdir()] == ["m.tflite"]


def test_float_io_and_per_tensor_options():
    interpreter = _interpreter(_convert(op_models.conv2d(), int8_io=False, per_channel=False))
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    weights = [t for t in interpreter.get_tensor_details() if len(t["shape"]) == 4
               and np.dtype(t["dtype"]) == np.int8 and t["shape"][0] == 8]
    assert weights and all(len(t["quantization_parameters"]["scales"]) == 1 for t in weights)


def test_representative_shape_is_checked():
    with pytest.raises(ToolchainError, match="representative data"):
        convert_int8(op_models.dense(), np.zeros((4, 5), np.float32))


def test_unsupported_op_is_a_toolchain_error():
    from toolchain.tf import import_tf

    tf, keras = import_tf()
    inputs = keras.Input((4, 4))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: tf.linalg.det(x))(inputs))
    with pytest.raises(ToolchainError, match="MatrixDeterminant"):
        convert_int8(model, np.random.default_rng(0).random((4, 4, 4), np.float32))


def test_op_without_int8_kernel_is_refused():
    from toolchain.tf import import_tf

    tf, keras = import_tf()
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: tf.math.lgamma(x))(inputs))
    with pytest.raises(ToolchainError, match="in float"):
        convert_int8(model, np.full((4, 4), 2.0, np.float32))
