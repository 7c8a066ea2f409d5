"""The mve kernels' own in-place rules (Variant.in_place), with no row bands: depthwise in channel groups exactly
over its input (stride 1 and 2), the pixel-lane depthwise and the convolutions (1x1 with K <= 32 and K > 32,
strided, expanding and shrinking, im2col) as far before their input as their read order allows, FULLY_CONNECTED
without scratch. Plans checked on the host, bit-exact with the buffers overlapping on mps3-an547 (QEMU)."""
from __future__ import annotations

import numpy as np
import pytest

import op_models as om
from conftest import convert
from toolchain.boards import get_board
from toolchain.compiler import compile_model
from toolchain.compiler.frontend import load_tflite
from toolchain.compiler.ops.mve.depthwise_conv2d import band_rows
from toolchain.compiler.ops.mve.overlap import steps_before
from toolchain.compiler.ops.variants import VARIANTS
from toolchain.compiler.passes import optimize
from toolchain.pipeline.api import deploy


def grouped_model(keras):
    """Channel-lane depthwise layers wide enough for channel groups (36 channels), 1x1 convs with K > 32 (copied
    pairs) and K <= 32 (held), odd channels and pixel counts, a strided 1x1, an odd-channel pixel-lane
    depthwise, FCs whose depth is not a multiple of 16."""
    keras.utils.set_random_seed(11)
    x = inputs = keras.Input((10, 6, 12))
    x = keras.layers.Conv2D(36, 3, padding="same", activation="relu")(x)        # im2col, K 108, expanding
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)                       # groups, stride 1
    x = keras.layers.Conv2D(36, 1, activation="relu6")(x)                         # 1x1 K 36: copied pairs
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(x)            # groups, stride 2 -> 5x3
    x = keras.layers.Conv2D(20, 1)(x)                                             # shrinking, 15 pixels (odd)
    x = keras.layers.Conv2D(45, 1, activation="relu")(x)                          # expanding, K 20 (held)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)                       # 45 channels: pixel lanes
    x = keras.layers.Conv2D(33, 1, strides=2)(x)                                  # strided 1x1, K 45 -> 3x2x33
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(13, activation="relu")(x)                              # depth 198 (tail 6)
    x = keras.layers.Dense(7)(x)                                                  # depth 13 (tail only)
    return keras.Model(inputs, x)


def wide_model(keras):
    """Pixel-lane depthwise layers (rows of 40 pixels), stride 1 and 2, an expanding 1x1 after each."""
    keras.utils.set_random_seed(12)
    x = inputs = keras.Input((7, 40, 8))
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(12, 1)(x)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(x)
    x = keras.layers.Conv2D(24, 1, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(5)(x)
    return keras.Model(inputs, x)


@pytest.fixture(scope="module")
def grouped_tflite(tmp_path_factory, keras):
    m = grouped_model(keras)
    return convert(m, om.representative(m.input_shape[1:], n=16), tmp_path_factory.mktemp("ipmve") / "g.tflite")


@pytest.fixture(scope="module")
def wide_tflite(tmp_path_factory, keras):
    m = wide_model(keras)
    return convert(m, om.representative(m.input_shape[1:], n=16), tmp_path_factory.mktemp("ipmve") / "w.tflite")


def _shifts(plan) -> dict[int, int]:
    """Layer -> shift of its output over the input it finishes, where they share bytes."""
    sizes = {t.id: t.bytes for t in plan.tensors if t.id is not None}
    return {o.layer: o.shift for o in plan.overlaps if -sizes[o.writer] < o.shift < sizes[o.reader]}


def test_steps_before():
    # two steps: the first writes 10 bytes, the second reads from byte 4: the output starts 6 bytes before
    assert steps_before([10, 20], [0, 4], 20).before == 6
    assert steps_before([10], [0], 20).before == -20  # one step: everything read first, any overlap
    assert steps_before([4, 8, 12], [0, 100, 5], 12).before == 3  # step 1 wrote 8 bytes, step 2 reads from 5


def test_rules_of_the_grouped_model(grouped_tflite):
    g = optimize(load_tflite(grouped_tflite))
    kinds = [(i, op) for i, op in enumerate(g.ops) if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    rules = {i: (VARIANTS[(op.kind, "mve")].in_place(op, g), op) for i, op in kinds}
    dw = [i for i, op in kinds if op.kind == "DEPTHWISE_CONV_2D"]
    assert [band_rows(g.ops[i], g) for i in dw] == [-4, -4, 0]  # groups of 4 channels; 45 channels: pixel lanes
    assert rules[dw[0]][0].same and rules[dw[1]][0].same
    # 3x3 SAME stride 1 in row slots: the output may start one row after the input (so also exactly over it)
    row = 3 * 45
    assert rules[dw[2]][0].before == -row
    convs = [i for i, op in kinds if op.kind == "CONV_2D"]
    pix = {i: g.tensors[g.ops[i].outputs[0]].nhwc() for i in convs}
    c_in = {i: g.tensors[g.ops[i].inputs[0]].nhwc()[3] for i in convs}
    one = convs[1]  # 36 -> 36, 60 pixels: a pair ahead of its input at most
    assert rules[one][0].before == 2 * (36 - 36) == 0
    shrink, expand = convs[2], convs[3]
    assert rules[shrink][0].before == 2 * (20 - 36)
    assert rules[expand][0].before == 14 * (45 - 20)  # the 15th (odd) pixel alone, read before its outputs
    assert pix[expand][3] == 45 and c_in[expand] == 20


def test_plan_overlaps_without_bands(grouped_tflite, wide_tflite, tmp_path):
    plan = compile_model(grouped_tflite, tmp_path / "g", target="mve", bands="none").plan
    assert not any(layer.band_rows for layer in plan.layers)
    shifts = _shifts(plan)
    kinds = {layer.index: layer.op for layer in plan.layers}
    dw = sorted(i for i in shifts if kinds[i] == "DEPTHWISE_CONV_2D")
    assert len(dw) >= 2 and all(shifts[i] == 0 for i in dw[:2])  # exactly over the input
    assert sum(1 for i in shifts if kinds[i] == "CONV_2D") >= 3
    wide = compile_model(wide_tflite, tmp_path / "w", target="mve", bands="none").plan
    assert sum(1 for i, s in _shifts(wide).items() if wide.layers[i].op == "DEPTHWISE_CONV_2D") == 2


def test_fc_has_no_scratch_and_ad_like_stack_fits(tmp_path, keras):
    keras.utils.set_random_seed(3)
    x = inputs = keras.Input((80,))
    for units in (16, 16, 8, 16, 80):
        x = keras.layers.Dense(units, activation="relu" if units != 80 else None)(x)
    m = keras.Model(inputs, x)
    tflite = convert(m, om.representative((80,), n=16), tmp_path / "ad.tflite")
    result = compile_model(tflite, tmp_path / "c", target="mve", bands="none")
    assert result.arena_bytes <= 80 + 16 + 16  # the widest layer's input and output, no FC scratch


@pytest.mark.emulator
@pytest.mark.parametrize("which", ["grouped", "wide"])
def test_in_place_bit_exact_on_device(which, grouped_tflite, wide_tflite, tmp_path):
    tflite = grouped_tflite if which == "grouped" else wide_tflite
    inputs_shape = (1, 10, 6, 12) if which == "grouped" else (1, 7, 40, 8)
    rng = np.random.default_rng(4)
    inputs = np.concatenate([np.full(inputs_shape, -128, np.int8), np.full(inputs_shape, 127, np.int8),
                             rng.integers(-128, 128, (2, *inputs_shape[1:])).astype(np.int8)])
    result = deploy(tflite, get_board("mps3-an547"), tmp_path, inputs=inputs, samples=len(inputs),
                    kernels="mve", bands="none", progress=lambda _: None)
    assert result.bit_exact, result.mismatches[:3]
    plan = compile_model(tflite, tmp_path / "again", target="mve", bands="none").plan
    overlapping = sum(1 for i in _shifts(plan) if plan.layers[i].op in ("CONV_2D", "DEPTHWISE_CONV_2D"))
    assert overlapping >= (6 if which == "grouped" else 3)
