"""Kernel paths (ref, dsp, mve): which boards run which, how a path's variants are chosen per layer with the
portable kernel as fallback, and the one-line errors for a path a core or the host cannot run."""
from __future__ import annotations

import pytest

import op_models as om
from conftest import convert
from toolchain.boards import get_board
from toolchain.cli import main
from toolchain.compiler import compile_model
from toolchain.compiler.driver import kernel_sources, path_headers
from toolchain.compiler.frontend import load_tflite
from toolchain.compiler.ops import variants
from toolchain.compiler.ops.variants import Variant
from toolchain.compiler.passes import optimize
from toolchain.compiler.targets import TARGETS
from toolchain.errors import ToolchainError


def test_boards_run_the_paths_their_core_has():
    assert get_board("mps2-an385").kernel_paths == ("ref", "cmsis-nn")
    assert get_board("mps2-an385").kernels == "ref"
    for name in ("mps2-an386", "mps2-an500", "mps2-an505", "netduinoplus2"):
        board = get_board(name)
        assert board.kernels == "dsp" and "dsp" in board.kernel_paths and "mve" not in board.kernel_paths
    assert get_board("mps3-an547").kernels == "mve"
    with pytest.raises(ToolchainError, match=r"(?s)mps2-an386 \(cortex-m4\) has no MVE extension.*"
                                             r"--kernels ref, dsp or cmsis-nn"):
        get_board("mps2-an386").check_kernels("mve")


def test_every_path_keeps_the_portable_kernels():
    ref = {p.name for p in kernel_sources("ref")}
    for target, folders in TARGETS.items():
        files = kernel_sources(target)
        assert ref <= {p.name for p in files}
        assert {p.parent.name for p in files} <= {*folders, "include"}
        assert all(h.split("/")[0] in folders for h in path_headers(target))


class Probe(Variant):
    """A variant that claims convolutions with `claim` and calls a made-up kernel (never built here)."""

    def __init__(self, name: str, claim: bool):
        self.name, self.claim = name, claim

    def applies(self, op, g):
        return self.claim

    def kernel_for(self, op, g):
        return self.name

    def scratch_bytes(self, op, g):
        return 40

    def emit(self, op, g, em):
        return f"{self.name}();"


@pytest.fixture
def conv_graph(tmp_path, keras):
    model = om.conv2d()
    tflite = convert(model, om.representative(model.input_shape[1:]), tmp_path / "conv.tflite")
    g = optimize(load_tflite(tflite))
    return g, next(op for op in g.ops if op.kind == "CONV_2D")


def test_the_most_specific_variant_that_applies_wins(conv_graph, monkeypatch):
    g, op = conv_graph
    monkeypatch.setattr(variants, "VARIANTS", {("CONV_2D", "dsp"): Probe("dsp_conv", True),
                                               ("CONV_2D", "mve"): Probe("mve_conv", False)})
    assert variants.kernel_for(op, g, "ref") == "tm_conv2d_s8"
    assert variants.kernel_for(op, g, "dsp") == "dsp_conv"
    assert variants.kernel_for(op, g, "mve") == "dsp_conv"  # mve's does not apply: the dsp one does
    assert variants.scratch_bytes(op, g, "mve") == 40 and variants.scratch_bytes(op, g, "ref") == 0
    variants.VARIANTS[("CONV_2D", "mve")].claim = True
    assert variants.kernel_for(op, g, "mve") == "mve_conv"
    variants.VARIANTS[("CONV_2D", "dsp")].claim = False
    assert variants.kernel_for(op, g, "dsp") == "tm_conv2d_s8"  # nothing applies: the portable kernel


def test_plan_and_model_c_say_the_path_and_the_reference(tmp_path, keras):
    model = om.conv2d()
    tflite = convert(model, om.representative(model.input_shape[1:]), tmp_path / "conv.tflite")
    compiled = compile_model(tflite, tmp_path / "c", target="dsp", reference="tflm")
    assert (compiled.plan.target, compiled.plan.reference) == ("dsp", "tflm")
    assert "Kernel path dsp; rounding of the tflm reference." in (tmp_path / "c" / "model.c").read_text()


def test_a_path_the_board_lacks_is_one_line_before_any_work(tmp_path, keras, capsys):
    model = om.conv2d()
    tflite = convert(model, om.representative(model.input_shape[1:]), tmp_path / "conv.tflite")
    out = tmp_path / "run"
    assert main(["run", str(tflite), "--board", "mps2-an385", "--kernels", "dsp", "--out", str(out)]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) <= 2 and "mps2-an385 (cortex-m3) has no DSP extension" in err, err
    assert not out.exists()


def test_host_check_of_a_device_only_path_is_refused_before_compiling(tmp_path, keras, capsys):
    model = om.conv2d()
    tflite = convert(model, om.representative(model.input_shape[1:]), tmp_path / "conv.tflite")
    out = tmp_path / "c"
    assert main(["compile", str(tflite), "-o", str(out), "--kernels", "mve", "--check", "2"]) != 0
    assert "the mve kernels run only on their core" in capsys.readouterr().err
    assert not out.exists()
