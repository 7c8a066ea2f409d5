"""Compression: magnitude pruning reaches its sparsity, channel pruning removes the requested MACs and the
smaller model still compiles bit-exact, QAT works on a two-exit model, and the stage runner keeps and
measures every stage. Small models on sklearn's 8x8 digits keep each test to a few seconds."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import compile_and_check, convert
from toolchain import zoo
from toolchain.compiler.arena import arena_bytes
from toolchain.compress.channels import analyze, prune_channels, widen
from toolchain.compress.stages import StageSpec, compress, parse_stages
from toolchain.errors import ToolchainError
from toolchain.verify.int8 import predict_tflite


def digits8(train: int = 800, seed: int = 0):
    """sklearn's 8x8 handwritten digits as a Dataset ([8, 8, 1] in 0..1, 10 classes)."""
    from sklearn.datasets import load_digits

    from toolchain.data import Dataset

    bunch = load_digits()
    x = (bunch.images[..., None] / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    val = train + 200
    return Dataset("digits8", "classification", (8, 8, 1), tuple(str(d) for d in range(10)),
                   x[:train], y[:train], x[train:val], y[train:val], x[val:], y[val:])


def exit_model(keras, seed: int = 0, channels: int = 16, batchnorm: bool = True, name: str = "small_exits"):
    """Two softmax outputs like the zoo's exit models: a residual block (Add), depthwise + BN, and an exit head
    reading the first half of the channels through the zoo's ChannelSlice."""
    from toolchain.zoo.layers import ChannelSlice

    keras.utils.set_random_seed(seed)
    layers = keras.layers

    def bn(x, name):
        return layers.BatchNormalization(momentum=0.9, name=name)(x) if batchnorm else x

    inputs = keras.Input((8, 8, 1), name="image")
    h = layers.ReLU(name="conv1_relu")(bn(layers.Conv2D(channels, 3, padding="same", name="conv1")(inputs), "conv1_bn"))
    r = layers.ReLU(name="dw_relu")(bn(layers.DepthwiseConv2D(3, padding="same", name="dw")(h), "dw_bn"))
    r = bn(layers.Conv2D(channels, 1, name="pw")(r), "pw_bn")
    h = layers.ReLU(name="add_relu")(layers.Add(name="add")([h, r]))
    e = ChannelSlice(0, channels // 2, name="exit_1_slice")(h)
    e = layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu", name="exit_1_dw")(e)
    e = layers.Flatten(name="exit_1_flatten")(layers.AveragePooling2D(2, name="exit_1_pool")(e))
    exit_1 = layers.Dense(10, activation="softmax", name="exit_1")(e)
    h = layers.Conv2D(2 * channels, 3, strides=2, padding="same", activation="relu", name="conv2")(h)
    h = layers.Flatten(name="flatten")(layers.AveragePooling2D(4, name="pool")(h))
    final = layers.Dense(10, activation="softmax", name="final")(h)
    return keras.Model(inputs, [exit_1, final], name=name)


@pytest.fixture(scope="module")
def digits():
    return digits8()


@pytest.fixture(scope="module")
def trained(keras, digits):
    """The small exit model trained for a few epochs (shared; tests copy it)."""
    from toolchain.compress.training import fit, recalibrate_batchnorm

    model = exit_model(keras)
    fit(model, digits, epochs=6, batch_size=64, lr=3e-3)
    recalibrate_batchnorm(model, digits)
    return model


# ---- unstructured pruning ----------------------------------------------------------------------------

def test_magnitude_pruning_reaches_the_sparsity(trained, digits):
    from toolchain.compress.magnitude import kernel_sparsity, prune_magnitude, zero_weights

    sparsity = 0.7
    pruned, report = prune_magnitude(trained, digits, sparsity=sparsity, epochs=2, batch_size=64)
    assert abs(report.sparsity - sparsity) <= 0.01
    assert kernel_sparsity(pruned) == report.sparsity
    assert set(report.layers) == {"conv1", "pw", "conv2", "exit_1", "final"}  # tfmot leaves depthwise alone
    assert [layer.name for layer in pruned.layers] == [layer.name for layer in trained.layers]  # wrappers stripped
    assert zero_weights(pruned) > 0 and zero_weights(trained) == 0


# ---- structured pruning ------------------------------------------------------------------------------

def _zoo_exit_model(name: str, style: str, ev_assist: bool):
    from toolchain.zoo import exits

    return exits.build(name, style=style, ev_assist=ev_assist)


@pytest.mark.parametrize("case, reduction", [
    ("small", 0.4), ("kws-trecx-ev", 0.5), pytest.param("ic-trecx", 0.3, marks=pytest.mark.slow)])
def test_structured_pruning_removes_the_macs_and_compiles_bit_exact(case, reduction, tmp_path, keras):
    keras.utils.set_random_seed(0)
    model = exit_model(keras) if case == "small" else _zoo_exit_model(case.split("-")[0], "trecx", case.endswith("ev"))
    rep = np.random.default_rng(0).uniform(-1, 1, (32, *model.input_shape[1:])).astype(np.float32)
    zoo.calibrate_batchnorm(model, rep)
    smaller, report = prune_channels(model, macs_reduction=reduction)
    assert abs(report.macs_reduction - reduction) <= 0.05
    assert report.macs_after == zoo.count_macs(smaller) < zoo.count_macs(model)
    assert zoo.folded_param_count(smaller) < zoo.folded_param_count(model)
    assert smaller.output_names == model.output_names == ["exit_1", "final"]
    assert [tuple(o.shape) for o in smaller.outputs] == [tuple(o.shape) for o in model.outputs]
    zoo.calibrate_batchnorm(smaller, rep)
    compile_and_check(convert(smaller, rep, tmp_path / "pruned.tflite"), tmp_path / "c", samples=4)


def test_channel_pruning_copies_the_surviving_weights_exactly(keras):
    """Channels whose filters (and biases) are zero contribute nothing: removing exactly those must leave
    every output unchanged, which holds only if each kept weight lands in the right place."""
    model = exit_model(keras, batchnorm=False)
    dead = [1, 3, 4, 6, 9, 11, 12, 14]  # half of each 8-channel segment of the tied conv1/pw group
    rng = np.random.default_rng(0)
    weights = {layer.name: layer.get_weights() for layer in model.layers if layer.get_weights()}
    for w in weights.values():
        w[1][:] = rng.uniform(-0.3, 0.3, w[1].shape)  # non-zero biases, so their copying is checked too
    weights["exit_1_dw"][1][[1, 3, 4, 6]] = 0
    for name in ("conv1", "pw"):
        weights[name][0][..., dead] = 0
        weights[name][1][dead] = 0
    weights["dw"][1][dead] = 0  # the depthwise bias would revive a dead channel through its ReLU
    weights["conv2"][0][..., ::2] = 0
    weights["conv2"][1][::2] = 0
    for name, w in weights.items():
        model.get_layer(name).set_weights(w)
    smaller, report = prune_channels(model, keep_fraction=0.5)
    assert report.channels["conv1"] == (16, 8) and report.channels["pw"] == (16, 8)
    assert report.channels["conv2"] == (32, 16)
    assert smaller.get_layer("exit_1_slice").get_config()["stop"] == 4
    x = np.random.default_rng(1).uniform(0, 1, (16, 8, 8, 1)).astype(np.float32)
    for want, got in zip(model.predict(x, verbose=0), smaller.predict(x, verbose=0)):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_residual_add_ties_groups_and_exit_slice_cuts_segments(keras):
    cg = analyze(exit_model(keras))
    g = cg.groups
    assert g.find(cg.produced["conv1"]) == g.find(cg.produced["pw"])  # tied by the Add
    root = g.find(cg.produced["conv1"])
    assert g.segments(root) == [(0, 8), (8, 16)]  # the exit reads channels [0, 8)
    assert g.frozen[g.find(cg.produced["final"])] and g.frozen[g.find(cg.produced["exit_1"])]
    assert sorted(g.prunable()) == sorted({root, g.find(cg.produced["conv2"])})


def test_mac_target_that_cannot_be_reached_is_refused(keras):
    with pytest.raises(ToolchainError, match="MACs"):
        prune_channels(exit_model(keras), macs_reduction=0.99)


def test_widen_scales_channels_and_slices_but_not_outputs(keras):
    model = exit_model(keras)
    wide = widen(model, 2)
    assert wide.get_layer("conv1").filters == 32 and wide.get_layer("conv2").filters == 64
    assert wide.get_layer("exit_1_slice").get_config()["stop"] == 16
    assert [tuple(o.shape) for o in wide.outputs] == [tuple(o.shape) for o in model.outputs]
    assert zoo.count_macs(wide) > 3 * zoo.count_macs(model)


# ---- quantization ------------------------------------------------------------------------------------

def test_qat_two_exit_model_converts_and_compiles_bit_exact(trained, digits, tmp_path):
    from toolchain.compress.quantize import quantization_aware_training, to_int8
    from toolchain.compress.training import calibration_samples
    from toolchain.verify.reference import ReferenceModel

    qat = quantization_aware_training(trained, digits, epochs=1, batch_size=64)
    assert qat.output_names == ["exit_1", "final"]
    path = tmp_path / "qat.tflite"
    to_int8(qat, calibration_samples(digits), path)
    assert sorted(ReferenceModel(path).output_names) == ["exit_1", "final"]
    compile_and_check(path, tmp_path / "c", samples=4)


# ---- the stage runner --------------------------------------------------------------------------------

def test_stage_runner_keeps_and_measures_every_stage(trained, digits, tmp_path):
    stages = [StageSpec("structured", {"macs_reduction": 0.4, "epochs": 1}),
              StageSpec("prune", {"sparsity": 0.5, "epochs": 2}),
              StageSpec("quantize", {"method": "ptq"})]
    results = compress(trained, digits, stages, tmp_path / "out", batch_size=64, eval_samples=100,
                       arena_estimator=arena_bytes, int8_runner=predict_tflite, progress=lambda _: None)
    assert [r.stage for r in results] == ["float", "structured", "prune", "quantize"]
    for r in results:
        assert (r.directory / "model.tflite").exists() and (r.directory / "stage.json").exists()
        assert (r.directory / "model.keras").exists() == (r.stage != "quantize")
        assert set(r.scores) == {"exit_1", "final"} and r.arena_bytes > 0
    float_, structured, pruned, quantized = results
    assert structured.macs < 0.65 * float_.macs and structured.params < float_.params
    assert structured.tflite_bytes < float_.tflite_bytes and structured.arena_bytes <= float_.arena_bytes
    assert pruned.nonzero_params < 0.75 * pruned.params and pruned.macs == structured.macs
    assert quantized.int8 and quantized.nonzero_params == pruned.nonzero_params
    assert set(quantized.info["int8_minus_float"]) == {"exit_1", "final"}
    assert abs(quantized.info["int8_minus_float"]["final"]) < 0.1
    saved = json.loads((tmp_path / "out" / "stages.json").read_text())
    assert [row["stage"] for row in saved] == ["float", "structured", "prune", "quantize"]


def test_stage_list_errors():
    with pytest.raises(ToolchainError, match="unknown stage 'shrink'"):
        parse_stages("prune,shrink")
    with pytest.raises(ToolchainError, match="must be the last"):
        parse_stages("quantize,prune")
    with pytest.raises(ToolchainError, match="unknown option 'sparsty'"):
        parse_stages(["prune"], {"prune": {"sparsty": 0.5}})
    with pytest.raises(ToolchainError, match="sparsity must be in"):
        parse_stages(["prune"], {"prune": {"sparsity": 1.5}})
    with pytest.raises(ToolchainError, match="method must be one of"):
        parse_stages(["quantize"], {"quantize": {"method": "int4"}})
    assert [s.kind for s in parse_stages(" structured, distill ,quantize")] == ["structured", "distill", "quantize"]


RECIPE = """
[model]
name = "kws"
[dataset]
name = "digits8"
[train]
batch_size = 64
[compress]
stages = ["structured", "quantize"]
eval_samples = 50
[compress.structured]
macs_reduction = 0.3
epochs = 1
"""


def test_recipe_compress_section():
    from toolchain.compress.recipe_section import CompressSection
    from toolchain.recipe import parse_recipe

    recipe = parse_recipe(RECIPE, name="small")
    section = recipe.section("compress")
    assert isinstance(section, CompressSection)
    assert [(s.kind, s.options) for s in section.stage_specs()] == [
        ("structured", {"macs_reduction": 0.3, "epochs": 1}), ("quantize", {})]
    with pytest.raises(ToolchainError, match=r"\[compress\].*unknown option 'teacher'"):
        parse_recipe(RECIPE + "[compress.prune]\nteacher = 'x'\n")
    assert parse_recipe(RECIPE.split("[compress]")[0]).section("compress").stages == []


@pytest.fixture
def digits8_registered(monkeypatch, digits):
    from toolchain.data import DATASETS, DatasetSource

    source = DatasetSource("digits8", "generated", "classification", "sklearn 8x8 digits", lambda root, seed: digits)
    monkeypatch.setitem(DATASETS._items, "digits8", source)


def test_cli_compress_with_model_and_with_recipe(trained, tmp_path, digits8_registered, capsys):
    from toolchain.cli import main
    from toolchain.compress.graph import save_keras

    model_path = save_keras(trained, tmp_path / "model.keras")
    rc = main(["compress", "--model", str(model_path), "--dataset", "digits8", "--stages", "quantize",
               "--eval-samples", "50", "-o", str(tmp_path / "a")])
    out = capsys.readouterr().out
    assert rc == 0 and "quantize (int8)" in out and "accuracy exit_1" in out
    recipe = tmp_path / "small.toml"
    recipe.write_text(RECIPE)
    assert main(["compress", str(recipe), "--model", str(model_path), "-o", str(tmp_path / "b")]) == 0
    rows = json.loads((tmp_path / "b" / "stages.json").read_text())
    assert [r["stage"] for r in rows] == ["float", "structured", "quantize"]
    assert rows[1]["info"]["macs_reduction"] == pytest.approx(0.3, abs=0.05)
    assert main(["compress", "--model", str(model_path)]) == 2  # no dataset, no stages
