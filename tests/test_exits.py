"""Early exits attach at T-RecX's feature maps, serialize, prune, and convert to int8 with named outputs."""
import numpy as np
import pytest

from toolchain import zoo
from toolchain.errors import ToolchainError
from toolchain.zoo import exits

CLASSIFIERS = ["kws", "ic", "vww"]
STYLES = sorted(exits.EXIT_STYLES)


def head_input_layer(model) -> str:
    """Name of the backbone layer the exit head's first layer reads."""
    exit_layers = [layer for layer in model.layers if layer.name.startswith(exits.EXIT_OUTPUT)]
    backbone = {layer.name for layer in model.layers} - {layer.name for layer in exit_layers}
    first = exit_layers[0]
    inbound = first.inbound_nodes[0].inbound_layers
    inbound = inbound if isinstance(inbound, list) else [inbound]
    assert len(inbound) == 1 and inbound[0].name in backbone
    return inbound[0].name


@pytest.fixture(scope="module")
def trecx_models():
    """The three classifiers with T-RecX exits and early-view assistance, built once."""
    return {name: exits.build(name, style="trecx", ev_assist=True) for name in CLASSIFIERS}


def check_exit_position(model, name):
    point = exits.EXIT_POINTS[name]
    assert head_input_layer(model) == point.feature_layer
    assert model.get_layer(point.feature_layer).output_shape[1:] == point.feature_shape
    assert model.output_names == [exits.EXIT_OUTPUT, exits.FINAL_OUTPUT]
    classes = zoo.get(name).num_classes
    for output in model.output_names:
        layer = model.get_layer(output)
        assert layer.activation.__name__ == "softmax" and layer.output_shape == (None, classes)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_trecx_exit_reads_the_papers_feature_map(trecx_models, name):
    check_exit_position(trecx_models[name], name)


@pytest.mark.parametrize("style", ["sdn", "branchy"])
def test_baseline_exits_read_the_same_feature_map(style):
    check_exit_position(exits.build("kws", style=style), "kws")


def test_feature_maps_match_the_issue():
    shapes = {name: exits.EXIT_POINTS[name].feature_shape for name in CLASSIFIERS}
    assert shapes == {"ic": (32, 32, 16), "kws": (25, 5, 64), "vww": (24, 24, 32)}


@pytest.mark.parametrize("name, head", [
    # (layer, output shape) of each T-RecX head, as the issue and the public T-RecX code build them
    ("kws", [("exit_1_slice", (25, 5, 32)), ("exit_1_dw", (13, 3, 32)), ("exit_1_pool", (6, 1, 32)),
             ("exit_1", (12,))]),
    ("ic", [("exit_1_pw", (32, 32, 32)), ("exit_1_dw", (16, 16, 32)), ("exit_1_pool", (4, 4, 32)),
            ("exit_1", (10,))]),
    ("vww", [("exit_1_pw", (24, 24, 64)), ("exit_1_dw", (12, 12, 64)), ("exit_1_pool", (3, 3, 64)),
             ("exit_1", (2,))]),
])
def test_trecx_heads(trecx_models, name, head):
    model = trecx_models[name]
    for layer, shape in head:
        assert model.get_layer(layer).output_shape[1:] == shape, layer
    dw, ev = model.get_layer(exits.EXIT_DEPTHWISE), model.get_layer(exits.EV_DEPTHWISE)
    assert [w.shape for w in dw.weights] == [w.shape for w in ev.weights]
    assert dw.activation.__name__ == ev.activation.__name__ == "relu"
    final_map = model.get_layer("avgpool").input_shape
    assert model.get_layer("ev_slice").input_shape == final_map
    assert model.get_layer("final_concat").output_shape[-1] == final_map[-1] + ev.output_shape[-1]


def test_no_exit_is_the_zoo_model():
    model = exits.build("kws", style="none")
    assert len(model.outputs) == 1 and zoo.count_macs(model) == zoo.count_macs(zoo.get("kws").build())


@pytest.mark.parametrize("style", STYLES)
def test_autoencoder_refuses_exits(style):
    with pytest.raises(ToolchainError, match="cannot have an early exit"):
        exits.build("ad", style=style)


def test_ev_assist_needs_trecx():
    with pytest.raises(ToolchainError, match="trecx"):
        exits.build("kws", style="sdn", ev_assist=True)


def test_channel_slice_serializes_and_has_nothing_to_prune(keras):
    from toolchain.zoo.layers import CUSTOM_OBJECTS, ChannelSlice

    layer = ChannelSlice(0, 32, name="s")
    again = ChannelSlice.from_config(layer.get_config())
    assert (again.start, again.stop, again.name) == (0, 32, "s")
    assert layer.get_prunable_weights() == []
    x = np.arange(2 * 3 * 64, dtype=np.float32).reshape(1, 2, 3, 64)
    np.testing.assert_array_equal(layer(x).numpy(), x[..., :32])
    assert "tinyml>ChannelSlice" in CUSTOM_OBJECTS
    with pytest.raises(ValueError):
        ChannelSlice(0, 80)(x)


def test_exit_model_reloads(tmp_path, keras):
    from toolchain.train.loop import load_model

    model = exits.build("kws", style="trecx", ev_assist=True)
    model.save(tmp_path / "model.keras")
    again = load_model(tmp_path / "model.keras")
    x = np.random.default_rng(0).normal(size=(2, 49, 10, 1)).astype(np.float32)
    for a, b in zip(model.predict(x, verbose=0), again.predict(x, verbose=0)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_whole_exit_model_prunes():
    """FACTS.md: prune_low_magnitude(whole model) fails on a TFOpLambda slice; ChannelSlice goes through."""
    import tensorflow_model_optimization as tfmot

    sparsity = tfmot.sparsity.keras
    pruned = sparsity.prune_low_magnitude(exits.build("kws", style="trecx", ev_assist=True))
    assert "prune_low_magnitude_exit_1_slice" in [layer.name for layer in pruned.layers]
    assert sparsity.strip_pruning(pruned).output_names == [exits.EXIT_OUTPUT, exits.FINAL_OUTPUT]


def test_int8_exit_model_outputs_map_by_name(keras):
    from ai_edge_litert.interpreter import Interpreter

    from toolchain.export.tflite import convert_int8
    from toolchain.train.evaluate import predict
    from toolchain.verify.int8 import predict_tflite

    keras.utils.set_random_seed(0)
    model = exits.build("kws", style="trecx", ev_assist=True)
    rep = np.random.default_rng(0).normal(0, 3, (32, 49, 10, 1)).astype(np.float32)
    zoo.calibrate_batchnorm(model, rep)
    flatbuffer = convert_int8(model, rep)
    interpreter = Interpreter(model_content=flatbuffer)
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert ops == {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "RESHAPE", "SOFTMAX",
                   "STRIDED_SLICE", "CONCATENATION"}
    assert interpreter.get_signature_list()["serving_default"]["outputs"] == [exits.EXIT_OUTPUT, exits.FINAL_OUTPUT]
    int8 = predict_tflite(flatbuffer, rep[:8])
    exit_probs, final_probs = predict(model, rep[:8])
    for name, probs in ((exits.EXIT_OUTPUT, exit_probs), (exits.FINAL_OUTPUT, final_probs)):
        assert int8[name].shape == probs.shape
        assert np.abs(int8[name] - probs).max() < 0.1, name  # quantization error, not a swapped output
