"""Memory: inputs and outputs inside the plan, overlapping buffers (element-wise kernels in place, windowed layers
in row bands), several placement orders and an exhaustive search, the lower bound, TFLM's figures. Bit-exact
with overlapping buffers on every kernel path: host (ref, dsp) and QEMU (dsp on the M4, mve on the M55)."""
from __future__ import annotations

import numpy as np
import pytest

import op_models as om
from conftest import convert
from toolchain.boards import get_board
from toolchain.compiler import compile_model, inplace
from toolchain.compiler.frontend import load_tflite
from toolchain.compiler.passes import optimize
from toolchain.errors import ToolchainError
from toolchain.compiler.planner import Buffer, Overlap, best_placement, lower_bound, place, plan_memory
from toolchain.pipeline.api import build_stage, random_batch, run_stage
from toolchain.verify.check import check_against_reference


# -- placement ------------------------------------------------------------------------------------------------

def test_writer_may_start_before_its_reader_by_the_distance():
    x, y = Buffer(0, "x", 320, 0, 1), Buffer(1, "y", 320, 1, 2)
    apart = {b.name: b.offset for b in place([x, y])}
    assert abs(apart["x"] - apart["y"]) >= 320
    before = {b.name: b.offset for b in place([x, y], {(0, 1): (None, 32, False)})}
    assert before["y"] - before["x"] == 32  # y over x, 32 bytes above it (written bottom band first)
    both = {b.name: b.offset for b in place([x, y], {(0, 1): (0, None, False)}, order=[y, x])}
    assert both["x"] == both["y"] == 0  # element-wise in place
    z = Buffer(2, "z", 64, 0, 1)
    exact = {b.name: b.offset for b in place([z, x, y], {(0, 1): (None, None, True)})}
    assert exact["y"] == exact["x"] and exact["z"] >= 320  # exactly over x (or nowhere near it)
    shifted = {b.name: b.offset for b in place([x, z, y], {(0, 1): (None, None, True)}, order=[z, x, y])}
    assert shifted["y"] == shifted["x"] == 64


def test_exhaustive_search_beats_every_single_order_on_a_small_graph():
    sizes = [(48, 1, 3), (64, 4, 4), (32, 3, 3), (32, 2, 4), (16, 1, 2)]
    bufs = [Buffer(i, f"b{i}", s, a, b) for i, (s, a, b) in enumerate(sizes)]
    greedy = max(b.offset + b.size for b in place(bufs))
    placed, strategy = best_placement(bufs, {})
    assert strategy == "exhaustive"
    assert max(b.offset + b.size for b in placed) == 112 < greedy
    for a in placed:  # and still no two live buffers share a byte
        for b in placed:
            if a is not b and a.first <= b.last and b.first <= a.last:
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset


def test_lower_bound_counts_what_an_overlap_saves():
    bufs = [Buffer(0, "x", 1000, 0, 1), Buffer(1, "y", 1000, 1, 2)]
    assert lower_bound(bufs, (), 2) == 2000
    assert lower_bound(bufs, (Overlap(1, 0, 1, 100, None),), 2) == 1100


# -- row bands ------------------------------------------------------------------------------------------------

def _graph(tflite):
    return optimize(load_tflite(tflite))


def test_band_geometry_and_distances(tmp_path, keras):
    model = om.depthwise(depth_multiplier=1, strides=1, padding="same")
    g = _graph(convert(model, om.representative(model.input_shape[1:]), tmp_path / "m.tflite"))
    i = next(i for i, op in enumerate(g.ops) if op.kind == "DEPTHWISE_CONV_2D")
    g = inplace.with_bands(g, {i: 1})
    op = g.ops[i]
    parts = inplace.bands(op, g, 1)
    h = g.tensors[op.inputs[0]].shape[1]
    assert [b.out_row for b in parts] == list(range(h))
    assert parts[0].pad_top == 1 and parts[0].in_rows == 2 and parts[1].in_row == 0 and parts[-1].in_rows == 2
    row = g.tensors[op.inputs[0]].shape[2] * g.tensors[op.inputs[0]].shape[3]
    assert inplace.band_distances(g, i) == (row, row)  # 3x3 stride 1: one row either way


def _zoo_tflite(name, tmp_path):
    from bench.firmware_matrix import make_tflite

    return make_tflite(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name,goal", [("kws", 8_800), ("vww", 29_500), ("ic", 34_500), ("ad", 768)])
def test_zoo_arena_meets_the_issue_goal(name, goal, tmp_path):
    """Issue 15's goals for model RAM without the stack, on every kernel path (mve has no host check: its
    bit-exactness on the zoo is bench/memory.py's and bench/kernel_paths.py's)."""
    tflite = _zoo_tflite(name, tmp_path)
    for target in ("ref", "dsp", "mve"):
        result = compile_model(tflite, tmp_path / target, target=target)
        assert result.arena_bytes <= goal, target
        assert result.plan.live_peak_bytes <= result.arena_bytes
        assert all(t.offset >= 0 and t.offset + t.bytes <= result.arena_bytes for t in result.plan.tensors)
        if target != "mve":
            report = check_against_reference(tflite, tmp_path / target, samples=2, seed=3)
            assert report.ok, report.summary()


# -- bit-exact with overlapping buffers --------------------------------------------------------------------------

def chain_model(keras):
    """Layers whose input dies where they read it: conv stride 2, depthwise, 1x1 expanding and shrinking,
    max and average pooling, a residual ADD, a standalone requantizing ReLU."""
    keras.utils.set_random_seed(5)
    inputs = keras.Input((17, 21, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = keras.layers.Conv2D(24, 1, activation="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=1)(x)
    y = keras.layers.Conv2D(24, 3, padding="same")(x)
    x = keras.layers.Add()([x, y])
    x = keras.layers.Conv2D(12, 1)(x)
    x = keras.layers.MaxPooling2D(2, padding="same")(x)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="valid")(x)
    x = keras.layers.AveragePooling2D(2, strides=1, padding="same")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(5)(x)
    return keras.Model(inputs, x)


@pytest.fixture(scope="module")
def chain_tflite(tmp_path_factory, keras):
    model = chain_model(keras)
    rep = np.random.default_rng(0).uniform(-1, 1, (24, *model.input_shape[1:])).astype(np.float32)
    return convert(model, rep, tmp_path_factory.mktemp("chain") / "m.tflite")


def _overlapping(plan) -> set[int]:
    """Layers whose output shares bytes with the input they finish."""
    sizes = {t.id: t.bytes for t in plan.tensors if t.id is not None}
    return {o.layer for o in plan.overlaps if -sizes[o.writer] < o.shift < sizes[o.reader]}


@pytest.mark.parametrize("target", ["ref", "dsp"])
def test_every_layer_in_bands_is_bit_exact_on_the_host(chain_tflite, target, tmp_path):
    result = compile_model(chain_tflite, tmp_path / "c", target=target, bands="all")
    banded = {layer.index for layer in result.plan.layers if layer.band_rows}
    kinds = {result.plan.layers[i].op for i in banded}
    assert kinds == {"CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D"}
    assert len(_overlapping(result.plan)) >= 4  # outputs over their inputs, bands and ADD
    assert "for (int32_t tm_b = 0;" in (tmp_path / "c" / "model.c").read_text()
    report = check_against_reference(chain_tflite, tmp_path / "c", samples=3, seed=2)
    assert report.ok, report.summary()


def test_auto_bands_only_where_the_arena_shrinks(chain_tflite, tmp_path):
    auto = compile_model(chain_tflite, tmp_path / "auto")
    none = compile_model(chain_tflite, tmp_path / "none", bands="none")
    every = compile_model(chain_tflite, tmp_path / "all", bands="all")
    assert auto.arena_bytes <= min(none.arena_bytes, every.arena_bytes)
    assert sum(1 for layer in auto.plan.layers if layer.band_rows) <= sum(
        1 for layer in every.plan.layers if layer.band_rows)
    assert check_against_reference(chain_tflite, tmp_path / "auto", samples=2, seed=4).ok


def test_inputs_and_outputs_live_in_the_arena(chain_tflite, tmp_path):
    result = compile_model(chain_tflite, tmp_path / "c")
    plan = result.plan
    for io in plan.inputs + plan.outputs:
        assert io.arena_offset is not None and io.arena_offset + io.bytes <= plan.arena_bytes
    g = _graph(chain_tflite)
    without_inputs = plan_memory(g, overlaps=False)
    assert plan.arena_bytes < without_inputs.arena_size  # overlaps pay for the input now in the arena
    header = (tmp_path / "c" / "model.h").read_text()
    assert "void *tm_model_input(int32_t i);" in header and "const void *tm_model_output(int32_t i);" in header


@pytest.mark.emulator
@pytest.mark.parametrize("board,kernels", [("mps2-an386", "dsp"), ("mps3-an547", "mve"), ("mps2-an385", "ref")])
def test_every_layer_in_bands_is_bit_exact_on_device(chain_tflite, board, kernels, tmp_path):
    compiled = compile_model(chain_tflite, tmp_path / "c", target=kernels, bands="all")
    assert len(_overlapping(compiled.plan)) >= 4
    image = build_stage(compiled, get_board(board), tmp_path / "fw", batch=random_batch(compiled, 2, seed=9))
    result = run_stage(chain_tflite, compiled, image)
    assert result.bit_exact, result.mismatches[:3]


# -- patch stages ---------------------------------------------------------------------------------------------

def _force_stages(monkeypatch, rows: int):
    """The compiler's band choice replaced by: the longest patch stage from layer 0 in bands of `rows` rows, every
    other layer that can be in single-layer bands."""
    def choose(g, arena):
        first, end = max((c for c in inplace.stage_candidates(g) if c[0] == 0), key=lambda c: c[1])
        singles = {i: 1 for i, op in enumerate(g.ops) if inplace.can_band(op, g) and i > end}
        return inplace.with_bands(g, {**singles, first: rows}, {first: end})
    monkeypatch.setattr(inplace, "choose_bands", choose)


@pytest.mark.parametrize("target,rows", [("ref", 1), ("dsp", 2), ("ref", 3)])
def test_patch_stage_is_bit_exact_on_the_host(chain_tflite, target, rows, tmp_path, monkeypatch):
    _force_stages(monkeypatch, rows)
    plan = compile_model(chain_tflite, tmp_path / "c", target=target).plan
    head = plan.layers[0]
    assert head.band_rows == rows and head.stage_end == 3  # conv stride 2, depthwise, 1x1, depthwise
    assert [layer.in_stage for layer in plan.layers[1:4]] == [0, 0, 0]
    assert head.computed_macs > sum(layer.macs for layer in plan.layers[:4])  # halo rows computed twice
    # inside the stage, no tensor exists whole: nothing in the arena is born at layers 1-3
    assert all(t.first_layer not in (1, 2, 3) for t in plan.tensors)
    report = check_against_reference(chain_tflite, tmp_path / "c", samples=3, seed=6)
    assert report.ok, report.summary()


@pytest.mark.emulator
@pytest.mark.parametrize("board,kernels", [("mps2-an386", "dsp"), ("mps3-an547", "mve")])
def test_patch_stage_is_bit_exact_on_device(chain_tflite, board, kernels, tmp_path, monkeypatch):
    _force_stages(monkeypatch, 2)
    compiled = compile_model(chain_tflite, tmp_path / "c", target=kernels)
    assert compiled.plan.layers[0].stage_end == 3
    image = build_stage(compiled, get_board(board), tmp_path / "fw", batch=random_batch(compiled, 2, seed=8))
    result = run_stage(chain_tflite, compiled, image)
    assert result.bit_exact, result.mismatches[:3]


# -- memory regions -------------------------------------------------------------------------------------------

def test_arena_split_over_regions_is_bit_exact_and_a_misfit_is_refused(chain_tflite, tmp_path):
    whole = compile_model(chain_tflite, tmp_path / "whole").plan
    cap = whole.arena_bytes // 2
    split = compile_model(chain_tflite, tmp_path / "split", regions=[("ram", cap), ("isram", 10 * cap)]).plan
    assert split.arena_regions["ram"] <= cap and split.arena_regions["isram"] > 0
    assert sum(split.arena_regions.values()) == split.arena_bytes
    assert {t.region for t in split.tensors} == {"", "isram"}
    model_c = (tmp_path / "split" / "model.c").read_text()
    assert 'static int8_t tm_arena_isram[' in model_c and 'TM_SECTION(".tm_arena.isram")' in model_c
    assert check_against_reference(chain_tflite, tmp_path / "split", samples=2, seed=1).ok
    pinned = compile_model(chain_tflite, tmp_path / "pinned", regions=[("isram", 10 * cap)]).plan
    assert pinned.arena_regions == {"isram": whole.arena_bytes}
    with pytest.raises(ToolchainError, match=r"fits no split .* ram [\d,]+ of 100 B, isram [\d,]+ of 200 B"):
        compile_model(chain_tflite, tmp_path / "refused", regions=[("ram", 100), ("isram", 200)])
    assert not (tmp_path / "refused").exists()
    with pytest.raises(ToolchainError, match="not a lower-case identifier"):
        compile_model(chain_tflite, tmp_path / "bad", regions=[('x"; system("', 100)])


# -- operator order -------------------------------------------------------------------------------------------

def test_greedy_order_runs_the_cheap_branch_first_and_lowers_the_peak():
    """X feeds a chain A1 -> A2 (A2 large) and a small branch B; C joins A2 and B. In the model's order X stays
    alive next to A2; running B first lets X die at A1."""
    from toolchain.compiler.ir import Graph, Op, Tensor
    from toolchain.compiler.schedule import candidate_orders, greedy_order

    sizes = {0: 100, 1: 50, 2: 500, 3: 10, 4: 10}  # X, A1, A2, B, C
    tensors = {t: Tensor(t, f"t{t}", (n,), "int8") for t, n in sizes.items()}
    ops = (Op("CONCATENATION", (0,), (1,)), Op("CONCATENATION", (1,), (2,)), Op("CONCATENATION", (0,), (3,)),
           Op("CONCATENATION", (2, 3), (4,)))
    g = Graph(tensors, ops, (0,), (4,), ("x",), ("c",))
    assert greedy_order(g) == [2, 0, 1, 3]
    model, greedy = candidate_orders(g)
    no_scratch = dict.fromkeys(range(4), 0)
    assert plan_memory(greedy, no_scratch).arena_size < plan_memory(model, no_scratch).arena_size
    assert plan_memory(greedy, no_scratch).live_peak == 560 and plan_memory(model, no_scratch).live_peak == 650
