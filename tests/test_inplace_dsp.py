"""The dsp kernels' own in-place rules (ops/dsp/*.py `in_place`): depthwise 3x3 (planes, ring of rows, lines
along W and along H), the GEMM convolutions (1x1 and im2col, shrinking, expanding, stride 2) and
FULLY_CONNECTED (widened form, one and several rows). Compiled without row bands, each scratch form forced
through the layers' scratch budget, the plan overlaps those layers' outputs with their inputs and the result is
bit-exact with LiteRT BUILTIN_REF on the host and in QEMU (M4 mps2-an386, M33 mps2-an505)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import convert
from toolchain.boards import get_board
from toolchain.compiler import compile_model, driver
from toolchain.compiler.frontend import load_tflite
from toolchain.compiler.ops import variants
from toolchain.compiler.ops.dsp.depthwise_conv2d import scratch_layout
from toolchain.compiler.passes import optimize
from toolchain.compiler.planner import plan_memory
from toolchain.pipeline.api import build_stage, random_batch, run_stage
from toolchain.verify.check import check_against_reference


def chain_model(keras, shape):
    """Odd channel counts throughout: conv 3x3 (im2col), depthwise stride 1 and 2, 1x1 keeping, expanding and
    shrinking the channels, FULLY_CONNECTED over 5 rows (expanding, shrinking) and over one."""
    keras.utils.set_random_seed(11)
    inputs = keras.Input(shape, batch_size=1)
    x = keras.layers.Conv2D(7, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = keras.layers.Conv2D(7, 1)(x)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(13, 1, activation="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="valid")(x)
    x = keras.layers.Conv2D(5, 1)(x)
    h, w = x.shape[1], x.shape[2]
    x = keras.layers.Reshape((h, w * 5))(x)
    x = keras.layers.Dense(w * 5 + 6, activation="relu")(x)  # 5 rows, expanding
    x = keras.layers.Dense(9)(x)  # shrinking
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(4)(x)  # one row
    return keras.Model(inputs, x)


SHAPES = {"wide": (11, 18, 3), "tall": (18, 11, 3)}  # depthwise lines along W, and along H (transposed)


@pytest.fixture(scope="module")
def models(keras, tmp_path_factory):
    d = tmp_path_factory.mktemp("inplace_dsp")
    out = {}
    for name, shape in SHAPES.items():
        model = chain_model(keras, shape)
        rep = np.random.default_rng(0).uniform(-1, 1, (24, *shape)).astype(np.float32)
        out[name] = convert(model, rep, d / f"{name}.tflite")
    return out


def _budget(form: str, op, g) -> int:
    """The scratch budget that makes the dsp kernels take `form`: lean (0), roomy (every channel's planes, the
    widened FC input) or ring (the depthwise ring of rows; others lean)."""
    if form == "roomy":
        return 1 << 20
    if form == "ring" and op.kind == "DEPTHWISE_CONV_2D":
        _, h, w, c = g.tensors[op.outputs[0]].nhwc()
        stride = op.options.get("strideH", 1)
        budget = 3 * c * (stride * ((max(h, w) + 1) & ~1) + 2) * 2
        return budget if scratch_layout(h, w, c, stride, budget)[0] == 0 else 0  # small planes win: lean
    return 0


@pytest.fixture
def forced(monkeypatch):
    """compile_model with every op's scratch budget set for a form, planned once (no second pass)."""
    def use(form: str):
        def plan_with(g, target):
            ops = tuple(op.replace(options={**op.options, variants.SCRATCH_BUDGET: _budget(form, op, g)})
                        for op in g.ops)
            g = g.replace(ops=ops)
            return g, plan_memory(g, target=target)
        monkeypatch.setattr(driver, "plan_with_variants", plan_with)
    return use


def _overlapping(plan) -> dict[int, int]:
    """Layer -> shift, for the layers whose output shares bytes with the input it finishes."""
    sizes = {t.id: t.bytes for t in plan.tensors if t.id is not None}
    return {o.layer: o.shift for o in plan.overlaps if -sizes[o.writer] < o.shift < sizes[o.reader]}


def _compile(tflite, out, form, forced):
    forced(form)
    result = compile_model(tflite, out, target="dsp", bands="none")
    layers = result.plan.layers
    kinds = {layers[i].op for i in _overlapping(result.plan)}
    assert {"DEPTHWISE_CONV_2D", "CONV_2D"} <= kinds, _overlapping(result.plan)
    if form == "ring":  # some depthwise layer really runs the ring
        g = optimize(load_tflite(tflite))
        assert any(_budget(form, op, g) > 0 for op in g.ops if op.kind == "DEPTHWISE_CONV_2D")
    return result


@pytest.mark.parametrize("form", ["lean", "ring", "roomy"])
@pytest.mark.parametrize("shape", SHAPES)
def test_overlapping_layers_are_bit_exact_on_the_host(models, shape, form, forced, tmp_path):
    _compile(models[shape], tmp_path / "c", form, forced)
    report = check_against_reference(models[shape], tmp_path / "c", samples=3, seed=5)
    assert report.ok, report.summary()


def test_rules(models):
    """The rules themselves: planes exactly in place (any overlap with a single group), 1x1 keeping the
    channels from the input's start, expanding ones before it, FC rows apart by the growth."""
    g = optimize(load_tflite(models["wide"]))
    rules = {}
    for i, op in enumerate(g.ops):
        for form in ("lean", "roomy"):
            o = op.replace(options={**op.options, variants.SCRATCH_BUDGET: _budget(form, op, g)})
            rules[i, form] = variants.in_place(o, g, "dsp")
    kinds = [op.kind for op in g.ops]
    dw = [i for i, k in enumerate(kinds) if k == "DEPTHWISE_CONV_2D"]
    assert all(rules[i, "lean"].same and rules[i, "lean"].before is None for i in dw)  # one channel's planes
    assert all(rules[i, "roomy"].after is not None for i in dw)  # one group: read whole first
    pw = [i for i, op in enumerate(g.ops) if kinds[i] == "CONV_2D" and g.tensors[op.inputs[1]].shape[1] == 1]
    keep, expand, shrink = pw
    assert rules[keep, "lean"].before == 0
    pixels, grow = g.tensors[g.ops[expand].inputs[0]].size // 7, 13 - 7
    assert rules[expand, "lean"].before == (pixels - 2 + pixels % 2) * grow  # the last block but one's end
    assert rules[shrink, "lean"].before == 2 * (5 - 13)
    fc = [i for i, k in enumerate(kinds) if k == "FULLY_CONNECTED"]
    assert all(rules[i, "lean"] is None for i in fc)
    rows = g.tensors[g.ops[fc[0]].outputs[0]].shape[1]
    assert rules[fc[0], "roomy"].before == (rows - 1) * 6
    assert rules[fc[1], "roomy"].before < 0 and rules[fc[2], "roomy"].after is not None


def fc_model(keras):
    """FULLY_CONNECTED the arena's peak: 3 rows expanding and shrinking, then one row expanding."""
    keras.utils.set_random_seed(12)
    inputs = keras.Input((3, 201), batch_size=1)
    x = keras.layers.Dense(233, activation="relu")(inputs)
    x = keras.layers.Dense(37)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(301, activation="relu")(x)
    x = keras.layers.Dense(7)(x)
    return keras.Model(inputs, x)


@pytest.fixture(scope="module")
def fc_tflite(keras, tmp_path_factory):
    rep = np.random.default_rng(1).uniform(-1, 1, (24, 3, 201)).astype(np.float32)
    return convert(fc_model(keras), rep, tmp_path_factory.mktemp("inplace_fc") / "fc.tflite")


@pytest.mark.parametrize("form", ["lean", "roomy"])
def test_fully_connected_in_place_only_widened(fc_tflite, form, forced, tmp_path):
    forced(form)
    result = compile_model(fc_tflite, tmp_path / "c", target="dsp", bands="none")
    over = _overlapping(result.plan)
    if form == "roomy":
        assert len(over) >= 3, over
    else:
        assert not over
        assert all(s.bytes == 0 for s in result.plan.tensors if s.id is None)  # no scratch at all
    report = check_against_reference(fc_tflite, tmp_path / "c", samples=3, seed=2)
    assert report.ok, report.summary()


@pytest.mark.slow
@pytest.mark.parametrize("name,goal", [("kws", 8_800), ("ad", 768)])
def test_zoo_goal_without_bands(name, goal, tmp_path):
    from bench.firmware_matrix import make_tflite

    tflite = make_tflite(name, tmp_path)
    result = compile_model(tflite, tmp_path / "c", target="dsp", bands="none")
    assert result.arena_bytes <= goal
    assert not any(layer.band_rows for layer in result.plan.layers)
    report = check_against_reference(tflite, tmp_path / "c", samples=2, seed=3)
    assert report.ok, report.summary()


@pytest.mark.emulator
@pytest.mark.parametrize("board,shape,form", [
    ("mps2-an386", "wide", "lean"), ("mps2-an386", "tall", "roomy"), ("mps2-an386", "wide", "ring"),
    ("mps2-an505", "tall", "lean"), ("mps2-an505", "wide", "roomy"), ("mps2-an505", "tall", "ring"),
    ("mps2-an386", "fc", "roomy"), ("mps2-an505", "fc", "lean"),
])
def test_overlapping_layers_are_bit_exact_on_device(models, fc_tflite, board, shape, form, forced, tmp_path):
    if not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")):
        pytest.skip("needs qemu-system-arm and arm-none-eabi-gcc")
    if shape == "fc":
        tflite = fc_tflite
        forced(form)
        compiled = compile_model(tflite, tmp_path / "c", target="dsp", bands="none")
    else:
        tflite = models[shape]
        compiled = _compile(tflite, tmp_path / "c", form, forced)
    image = build_stage(compiled, get_board(board), tmp_path / "fw", batch=random_batch(compiled, 3, seed=7))
    result = run_stage(tflite, compiled, image)
    assert result.bit_exact, result.mismatches[:3]
