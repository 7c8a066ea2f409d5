"""On-device early exit: the generated code leaves at an exit when its int8 softmax max reaches the
threshold, exactly as LiteRT's outputs of the same int8 model imply, and saves instructions doing so."""
from __future__ import annotations

import numpy as np
import pytest

import op_models as om
from conftest import convert
from toolchain.boards import get_board
from toolchain.compiler import compile_model
from toolchain.verify.check import check_against_reference
from toolchain.compiler.exits import NEVER, ExitThreshold, threshold_to_int8
from toolchain.pipeline.api import deploy
from toolchain.verify.reference import ReferenceModel


@pytest.fixture
def two_exit_model(tmp_path, keras):
    model = om.two_outputs()
    return convert(model, om.representative(model.input_shape[1:]), tmp_path / "two.tflite")


def median_threshold(tflite, inputs) -> int:
    """An int8 threshold that some but not all of these inputs reach at the exit (per LiteRT)."""
    ref = ReferenceModel(tflite)
    exit_index = ref.output_names.index("exit_1")
    maxima = sorted(int(np.max(ref.run([x])[exit_index])) for x in inputs)
    assert maxima[0] < maxima[-1], "the exit's confidence does not vary over these inputs"
    median = maxima[len(maxima) // 2]
    return median if median > maxima[0] else maxima[-1]


def test_threshold_conversion():
    assert threshold_to_int8(1.0) == NEVER
    assert threshold_to_int8(0.0) == -128
    assert threshold_to_int8(0.5) == 0  # (0 + 128) / 256 = 0.5
    assert threshold_to_int8(0.9) == 103  # ceil(230.4 - 128)


def test_exit_is_scheduled_before_the_rest(two_exit_model, tmp_path):
    plan = compile_model(two_exit_model, tmp_path / "c", early_exit=True).plan
    (ex,) = plan.exits
    assert ex.output == "exit_1" and 0 < ex.macs < plan.macs
    assert [layer.op for layer in plan.layers[: ex.layers]][-1] == "SOFTMAX"
    header = (tmp_path / "c" / "model.h").read_text()
    assert "#define TM_MODEL_NUM_EXITS 1" in header


@pytest.mark.parametrize("threshold", [NEVER, "median", -128])
def test_host_exits_agree_with_reference(two_exit_model, tmp_path, threshold):
    compile_model(two_exit_model, tmp_path / "c", early_exit=True)
    rng = np.random.default_rng(1)
    inputs = [[rng.integers(-128, 128, (1, *om.IMAGE), dtype=np.int8)] for _ in range(24)]
    if threshold == "median":
        threshold = median_threshold(two_exit_model, [x[0] for x in inputs])
    report = check_against_reference(two_exit_model, tmp_path / "c", inputs=inputs, exit_threshold=threshold)
    assert report.ok, report.summary()
    expected = {NEVER: {1}, -128: {0}}.get(threshold, {0, 1})
    assert set(report.exits) == expected


def test_non_softmax_output_cannot_be_an_exit(tmp_path, keras):
    inputs = keras.Input((8, 8, 4))
    a = keras.layers.Conv2D(4, 3, name="a")(inputs)
    b = keras.layers.Dense(3, activation="softmax", name="b")(keras.layers.Flatten()(keras.layers.Conv2D(4, 3)(a)))
    tflite = convert(keras.Model(inputs, [a, b]), om.representative((8, 8, 4)), tmp_path / "m.tflite")
    from toolchain.errors import ToolchainError

    with pytest.raises(ToolchainError, match="cannot be an early exit"):
        compile_model(tflite, tmp_path / "c", early_exit=True)


@pytest.mark.emulator
def test_device_exits_match_host_and_save_instructions(two_exit_model, tmp_path):
    rng = np.random.default_rng(2)
    inputs = rng.integers(-128, 128, (10, *om.IMAGE), dtype=np.int8)
    threshold = median_threshold(two_exit_model, [x[None] for x in inputs])
    board = get_board("mps2-an386")
    quiet = {"progress": lambda _: None, "early_exit": True}
    at_median, never = ExitThreshold.from_int8(threshold), ExitThreshold.never()
    early = deploy(two_exit_model, board, tmp_path / "early", inputs=inputs, exit_threshold=at_median, **quiet)
    full = deploy(two_exit_model, board, tmp_path / "full", inputs=inputs, exit_threshold=never, **quiet)
    assert early.exits == early.expected_exits and early.bit_exact, (early.exits, early.expected_exits)
    assert 0 < early.summary()["exit_rate"] < 1
    assert full.exits == [1] * 10 and full.bit_exact
    assert early.summary()["instructions_mean"] < full.summary()["instructions_mean"]
    # layers after the exit did not run for the samples that left early
    for k, taken in enumerate(early.exits):
        ran = [t is not None for t in early.layer_instructions(k)]
        assert all(ran) == (taken == 1)


@pytest.mark.emulator
def test_trecx_kws_early_exit_on_device(tmp_path, keras):
    """The T-RecX KWS model (channel-slice head, early-view assistance), int8, in QEMU: the device's exit
    and prediction equal the host's (LiteRT on the same int8 inputs) for every sample, and leaving early
    costs fewer instructions than the no-exit build."""
    from toolchain import zoo
    from toolchain.zoo import exits

    keras.utils.set_random_seed(0)
    model = exits.build("kws", style="trecx", ev_assist=True)
    rep = np.random.default_rng(0).uniform(-1, 1, (32, 49, 10, 1)).astype(np.float32)
    zoo.calibrate_batchnorm(model, rep)
    tflite = convert(model, rep, tmp_path / "trecx.tflite")
    inputs = np.random.default_rng(3).integers(-128, 128, (8, 49, 10, 1), dtype=np.int8)
    threshold = median_threshold(tflite, [x[None] for x in inputs])
    board = get_board("mps2-an386")
    quiet = {"progress": lambda _: None, "early_exit": True}
    at_median, never = ExitThreshold.from_int8(threshold), ExitThreshold.never()
    early = deploy(tflite, board, tmp_path / "early", inputs=inputs, exit_threshold=at_median, **quiet)
    full = deploy(tflite, board, tmp_path / "full", inputs=inputs, exit_threshold=never, **quiet)
    ops = {layer.op for layer in early.plan.layers}
    assert {"STRIDED_SLICE", "CONCATENATION"} <= ops
    assert early.exits == early.expected_exits and early.bit_exact
    assert 0 < early.summary()["exit_rate"] < 1
    names = early.plan.output_names
    for k, taken in enumerate(early.exits):
        name = "exit_1" if taken == 0 else "final"
        device = np.argmax(early.run.outputs(early.plan, k)[names.index(name)])
        host = np.argmax(early.reference_outputs[k][names.index(name)])
        assert device == host
    assert early.summary()["instructions_mean"] < full.summary()["instructions_mean"]
