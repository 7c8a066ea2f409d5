"""The static memory plan: tensors alive at the same time never overlap, and the plan is tight."""
from __future__ import annotations

import json

import pytest

import op_models as om
from conftest import compile_and_check, convert
from toolchain.compiler.planner import Buffer, place


def overlaps_in_time_and_space(a: dict, b: dict) -> bool:
    live_together = a["first_layer"] <= b["last_layer"] and b["first_layer"] <= a["last_layer"]
    share_bytes = a["offset"] < b["offset"] + b["bytes"] and b["offset"] < a["offset"] + a["bytes"]
    return live_together and share_bytes


def assert_no_overlap(plan: dict) -> None:
    """No two tensors alive together share a byte, except an output over the input its layer finishes, where
    the plan says so (`overlaps`: that layer never writes over input bytes it still reads)."""
    tensors = plan["tensors"]
    allowed = {frozenset((o["reader"], o["writer"])) for o in plan["overlaps"]}
    for i, a in enumerate(tensors):
        assert a["offset"] % 16 == 0, a
        assert a["offset"] + a["bytes"] <= plan["arena_bytes"], a
        for b in tensors[i + 1:]:
            if frozenset((a["id"], b["id"])) not in allowed:
                assert not overlaps_in_time_and_space(a, b), f"{a['name']} and {b['name']} overlap"


def test_place_reuses_memory_of_dead_buffers():
    bufs = [Buffer(0, "a", 100, 0, 1), Buffer(1, "b", 100, 1, 2), Buffer(2, "c", 100, 2, 3)]
    placed = {b.name: b for b in place(bufs)}
    assert placed["a"].offset != placed["b"].offset
    assert placed["c"].offset == placed["a"].offset  # a is dead when c is born


def test_place_puts_largest_first_and_fills_gaps():
    bufs = [Buffer(0, "big", 1000, 0, 2), Buffer(1, "small1", 16, 0, 0), Buffer(2, "small2", 16, 1, 1)]
    placed = {b.name: b for b in place(bufs)}
    assert placed["big"].offset == 0
    assert placed["small1"].offset == placed["small2"].offset == 1008  # 1000 aligned to 16


@pytest.mark.parametrize("builder", [om.add, om.two_outputs, om.concatenation])
def test_compiled_plan_has_no_overlap(builder, tmp_path, keras):
    model = builder()
    tflite = convert(model, om.representative(model.input_shape[1:]), tmp_path / "m.tflite")
    result = compile_and_check(tflite, tmp_path / "out", samples=2)
    plan = json.loads((tmp_path / "out" / "model_plan.json").read_text())
    assert plan == result.plan.to_dict()
    assert_no_overlap(plan)
    assert plan["live_peak_bytes"] <= plan["arena_bytes"]  # the lower bound
