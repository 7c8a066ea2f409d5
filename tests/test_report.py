"""The one terminal table writer, the one Markdown table writer, and the one plotting path."""
from types import SimpleNamespace

import pytest

from toolchain.report import plots
from toolchain.report.document import Report
from toolchain.report.table import format_cell, format_table, markdown_table

HEADERS = ["name", "n", "x", "maybe", "flag"]
ROWS = [["a", 1, 2.5, None, True], ["bbbb", 12345, 1234.5678, 3, False]]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("value, float_format, text", [
    (None, ",.2f", ""), (True, ",.2f", "True"), (1234567, ",.2f", "1,234,567"), (1234.5678, ",.2f", "1,234.57"),
    (0.91234, ".3f", "0.912"), ("text", ",.2f", "text"),
])
def test_cell(value, float_format, text):
    assert format_cell(value, float_format) == text


def test_terminal_table():
    assert format_table(HEADERS, ROWS, title="T").splitlines() == [
        "T",
        "name       n         x  maybe  flag",
        "----  ------  --------  -----  -----",
        "a          1      2.50         True",
        "bbbb  12,345  1,234.57      3  False",
    ]


def test_markdown_table():
    assert markdown_table(HEADERS, ROWS).splitlines() == [
        "| name | n | x | maybe | flag |",
        "|---|---|---|---|---|",
        "| a | 1 | 2.50 |  | True |",
        "| bbbb | 12,345 | 1,234.57 | 3 | False |",
    ]
    assert markdown_table(["score"], [[0.91234]], float_format=".3f").splitlines()[-1] == "| 0.912 |"


def test_report_document_uses_its_own_cells():
    report = Report("R")
    report.table(["a", "b", "c", "d"], [[1, 2.5, True, None], ["x", 12345.678, False, 1234567]])
    assert report.markdown().splitlines()[2:6] == [
        "| a | b | c | d |", "|---|---|---|---|", "| 1 | 2.5 | yes |  |", "| x | 12,346 | no | 1,234,567 |"]
    assert "<td>12,346</td><td>no</td>" in report.html()


def test_pipeline_plots_are_png(tmp_path):
    layers = [{"index": 0, "op": "CONV_2D", "instructions": 900, "macs": 300},
              {"index": 1, "op": "SOFTMAX", "instructions": 50, "macs": 0}]
    tensor = SimpleNamespace(first_layer=0, last_layer=1, offset=0, bytes=64)
    plan = SimpleNamespace(tensors=[tensor], arena_bytes=64, live_peak_bytes=64)
    rows = [{"threshold": 0.5, "accuracy": 0.9, "instructions": 800.0},
            {"threshold": 0.9, "accuracy": 0.92, "instructions": 900.0}]
    written = [plots.layer_instructions(layers, tmp_path / "layers.png", "per layer"),
               plots.arena_plan(plan, tmp_path / "arena.png"),
               plots.accuracy_vs_cost(rows, tmp_path / "cost.png", "instructions", "instructions", "cost")]
    for path in written:
        assert path.read_bytes().startswith(PNG)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arena.png", "cost.png", "layers.png"]  # no temp files


def test_png_bytes():
    fig, ax = plots.figure((2, 2))
    ax.plot([0, 1], [1, 0])
    assert plots.png_bytes(fig).startswith(PNG)
