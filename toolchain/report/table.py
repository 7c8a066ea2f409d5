"""The two table writers: plain text for the terminal, Markdown for files. Both format cells alike."""
from __future__ import annotations


def format_cell(value, float_format: str = ",.2f") -> str:
    """None is empty, integers get thousands separators, floats `float_format`, anything else `str()`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return format(value, float_format)
    return str(value)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_table(headers: list[str], rows: list[list], title: str | None = None, *,
                 float_format: str = ",.2f") -> str:
    """Numbers are right-aligned, text left-aligned; a column is numeric when all its non-empty cells are."""
    cells = [[format_cell(v, float_format) for v in row] for row in rows]
    numeric = [all(_is_number(r[i]) for r in rows if r[i] is not None) for i in range(len(headers))]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [title] if title else []
    out += [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    return "\n".join(out)


def markdown_table(headers: list[str], rows: list[list], *, float_format: str = ",.2f") -> str:
    """A GitHub-flavoured Markdown table, cells formatted as `format_table` formats them."""
    def line(values: list[str]) -> str:
        return "| " + " | ".join(values) + " |"

    lines = [line(headers), "|" + "---|" * len(headers)]
    lines += [line([format_cell(v, float_format) for v in row]) for row in rows]
    return "\n".join(lines)
