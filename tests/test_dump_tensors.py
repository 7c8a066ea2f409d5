"""Where does it differ? The firmware dumps every layer's output; the host names the first layer that
differs from LiteRT's intermediate tensors (tinyml run --dump-tensors)."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

import op_models as om
from conftest import convert
from toolchain.boards import get_board
from toolchain.cli import main
from toolchain.compiler import compile_model
from toolchain.pipeline.api import build_stage, run_stage
from toolchain.verify.tensors import compare_layer_tensors

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def model(tmp_path_factory, keras):
    m = om.two_outputs()
    return convert(m, om.representative(m.input_shape[1:]), tmp_path_factory.mktemp("dump") / "m.tflite")


def test_cli_dump_tensors_all_layers_identical(model, tmp_path, capsys):
    rc = main(["run", str(model), "--samples", "2", "--dump-tensors", "--out", str(tmp_path / "run"),
               "--json", str(tmp_path / "run.json")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "every layer's output identical to LiteRT BUILTIN_REF" in out, out
    doc = json.loads((tmp_path / "run.json").read_text())
    assert doc["layer_tensors"]["identical"] and doc["layer_tensors"]["layers_compared"] == 2 * len(doc["layers"])


def _tamper_weights_of_layer(model_c, layer: int) -> None:
    """Change one weight of the constant the given layer's call uses first."""
    text = model_c.read_text()
    call = text[text.index(f"TM_LAYER({layer});"):]
    const = re.search(r"\btm_w(\d+)\b", call[:call.index("TM_CHECK") + 400]).group(0)
    decl = re.search(rf"static const int8_t {const}\[\d+\] TM_ALIGNED\(4\) TM_WEIGHTS_ATTR = {{\s*(-?\d+)", text)
    value = int(decl.group(1))
    start, end = decl.span(1)
    model_c.write_text(text[:start] + str(value + 64 if value < 0 else value - 64) + text[end:])


def test_a_wrong_weight_is_located_at_its_layer(model, tmp_path):
    board = get_board("mps2-an386")
    model_dir = tmp_path / "c"
    compiled = compile_model(model, model_dir)
    plan = compiled.plan
    weighted = [layer.index for layer in plan.layers if layer.op in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    broken = weighted[1]  # a layer in the middle: the ones before it must still match
    _tamper_weights_of_layer(model_dir / "model.c", broken)
    rng = np.random.default_rng(3)
    batch = [[rng.integers(-128, 128, size=i.shape, dtype=np.int8) for i in plan.inputs] for _ in range(2)]
    image = build_stage(compiled, board, tmp_path / "fw", batch=batch, dump_tensors=True)
    result = run_stage(model, compiled, image, timeout=120)
    assert not result.bit_exact
    firsts = result.tensors.first_differences
    assert [d.sample for d in firsts] == [0, 1]
    assert all(d.layer == broken and d.op == plan.layers[broken].op for d in firsts), result.tensors.summary()
    assert all(0 < d.differing <= d.size and d.max_abs_diff > 0 for d in firsts)
    assert f"layer {broken} ({plan.layers[broken].op}" in result.tensors.summary()


def test_compare_layer_tensors_reports_the_first_difference_only():
    ref = [{5: np.array([1, 2, 3], np.int8), 7: np.array([4, 5], np.int8)}]
    same = compare_layer_tensors({0: [(0, 5, bytes([1, 2, 3])), (1, 7, bytes([4, 5]))]}, ref, ["A", "B"], {5: "x"})
    assert same.identical and same.layers_compared == 2
    diff = compare_layer_tensors({0: [(0, 5, bytes([1, 9, 3])), (1, 7, bytes([0, 0]))]}, ref, ["A", "B"], {5: "x"})
    (d,) = diff.first_differences
    assert (d.layer, d.tensor, d.name, d.differing, d.max_abs_diff, d.device, d.reference) == \
        (0, 5, "x", 1, 7, [9], [2])
