"""The stage table: text for the terminal, Markdown for docs/BENCHMARKS.md."""
from __future__ import annotations

from typing import TYPE_CHECKING

from toolchain.report.table import format_table, markdown_table

if TYPE_CHECKING:
    from toolchain.compress.stages import CompressionStep

SCORE_FORMAT = ".3f"  # the only floats in the table are the accuracies / AUCs


def _columns(results: list[CompressionStep]) -> tuple[list[str], list[list]]:
    outputs = list(dict.fromkeys(name for r in results for name in r.scores))
    metric = results[0].metric if results else "accuracy"
    headers = ["#", "stage", *(f"{metric} {o}" for o in outputs), "params", "non-zero", "MACs", ".tflite B",
               "arena B", "notes"]
    rows = []
    for r in results:
        notes = _notes(r)
        rows.append([r.index, r.stage + (" (int8)" if r.int8 else ""),
                     *(r.scores.get(o) for o in outputs), r.params, r.nonzero_params, r.macs, r.tflite_bytes,
                     r.arena_bytes, notes])
    return headers, rows


def _notes(r: CompressionStep) -> str:
    i = r.info
    if r.stage == "prune":
        return f"sparsity {i['sparsity']:.1%} (target {i['target_sparsity']:.0%})"
    if r.stage == "structured":
        return f"MACs -{i['macs_reduction']:.1%}, channels kept {i['keep_fraction']:.0%}"
    if r.stage == "distill":
        return f"teacher {i['teacher']} ({i['teacher_params']:,} params, {i['teacher_score']:.3f})"
    if r.stage == "quantize":
        change = ", ".join(f"{k} {v:+.3f}" for k, v in i["int8_minus_float"].items())
        return f"{i['method'].upper()}; int8 - float (stage input): {change}"
    return ""


def format_rows(results: list[CompressionStep], header: bool = True, title: str | None = None) -> str:
    text = format_table(*_columns(results), title=title, float_format=SCORE_FORMAT)
    return text if header else text.splitlines()[-1]


def markdown_rows(results: list[CompressionStep]) -> str:
    return markdown_table(*_columns(results), float_format=SCORE_FORMAT)
