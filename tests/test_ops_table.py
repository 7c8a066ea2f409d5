"""`tinyml ops`: every operator we compile, per kernel path, beside tflite-micro's kernels; docs/OPS.md is its
Markdown and stays current."""
from __future__ import annotations

from pathlib import Path

import pytest

from toolchain.cli import main
from toolchain.cli.ops import render
from toolchain.compiler.ops import OPS
from toolchain.verify.tflm_memory import tflm_builtin_ops

DOC = Path(__file__).resolve().parents[1] / "docs" / "OPS.md"


def test_every_operator_is_listed_with_its_constraints(capsys):
    assert main(["ops"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.split()}
    for name, opdef in OPS.items():
        assert opdef.constraints, f"{name} has no constraints text"
        assert name in lines and opdef.constraints[:40] in lines[name]
    assert "dsp variant" in lines["CONV_2D"] and "mve variant" in lines["DEPTHWISE_CONV_2D"]
    assert "portable kernel" in lines["SOFTMAX"]


def test_tflite_micro_operators_are_read_from_its_runtime():
    ops, why = tflm_builtin_ops()
    if ops is None:
        pytest.skip(why)
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "LOGISTIC", "TRANSPOSE_CONV"} <= ops
    assert "CIRCULAR_BUFFER" not in ops  # custom operators are not TFLite builtins


def test_docs_ops_md_is_the_generated_table():
    if tflm_builtin_ops()[0] is None:
        pytest.skip("tflite-micro is not installed: the table's tflite-micro column would differ")
    assert DOC.read_text() == render(markdown=True), "regenerate: tinyml ops --markdown > docs/OPS.md"
