"""The MLPerf Tiny builders match the reference architectures' size, cost and int8 op set."""
import subprocess
import sys

import pytest

from op_models import representative
from toolchain import zoo
from toolchain.errors import ToolchainError

# Folded parameters and MACs of the mlcommons/tiny reference models (published: KWS 22.6k / 2.66M,
# VWW 211k / 7.49M, IC 77.7k / 12.5M, AD 266k / 264k).
REFERENCE = {
    "kws": (22_604, 2_656_768),
    "vww": (210_850, 7_489_664),
    "ic": (77_706, 12_501_632),
    "ad": (265_864, 264_192),
}


def test_registry_lists_the_four_models():
    assert list(zoo.MODELS) == sorted(REFERENCE)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_matches_reference_size(name):
    entry = zoo.get(name)
    model = entry.build()
    params, macs = REFERENCE[name]
    assert tuple(model.input_shape[1:]) == entry.input_shape
    assert zoo.folded_param_count(model) == params
    assert zoo.count_macs(model) == macs


def test_builders_take_shape_and_classes():
    model = zoo.get("ic").build(input_shape=(16, 16, 3), num_classes=4)
    assert model.input_shape == (None, 16, 16, 3)
    assert model.output_shape == (None, 4)


def test_unknown_model_lists_known_names():
    with pytest.raises(ToolchainError) as err:
        zoo.get("resnet50")
    assert "kws" in str(err.value) and "vww" in str(err.value)


@pytest.mark.parametrize(
    "name, ops",
    [
        ("kws", {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "RESHAPE",
                 "SOFTMAX"}),
        ("ad", {"FULLY_CONNECTED"}),
    ],
)
def test_int8_conversion_folds_batchnorm(name, ops):
    from ai_edge_litert.interpreter import Interpreter

    from toolchain.export.tflite import convert_int8

    model = zoo.get(name).build()
    flatbuffer = convert_int8(model, representative(model.input_shape[1:], n=8))
    found = {op["op_name"] for op in Interpreter(model_content=flatbuffer)._get_ops_details()}
    assert found == ops


def test_importing_zoo_and_export_does_not_load_tensorflow():
    code = (
        "import sys, toolchain.zoo, toolchain.export.tflite;"
        "sys.exit('tensorflow' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
