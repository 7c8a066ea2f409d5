"""A report as a list of blocks, rendered to Markdown and to a self-contained-enough HTML page."""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from toolchain.fsutil import write_atomic
from toolchain.report.table import format_cell, markdown_table


def _cell(v) -> str:
    """Flags read yes/no and fractional figures keep four significant digits; the rest as in every table."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return format_cell(v, ",.4g" if abs(v) < 1000 else ",.0f")
    return format_cell(v)


@dataclass
class Report:
    title: str
    blocks: list[tuple] = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.blocks.append(("h2", text))

    def text(self, text: str) -> None:
        self.blocks.append(("p", text))

    def table(self, headers: list[str], rows: list[list]) -> None:
        self.blocks.append(("table", headers, [[_cell(v) for v in r] for r in rows]))

    def image(self, path: str, caption: str) -> None:
        self.blocks.append(("img", path, caption))

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for b in self.blocks:
            if b[0] == "h2":
                out += [f"## {b[1]}", ""]
            elif b[0] == "p":
                out += [b[1], ""]
            elif b[0] == "table":
                out += [markdown_table(b[1], b[2]), ""]
            elif b[0] == "img":
                out += [f"![{b[2]}]({b[1]})", "", f"*{b[2]}*", ""]
        return "\n".join(out)

    def html(self) -> str:
        e = html.escape
        body = [f"<h1>{e(self.title)}</h1>"]
        for b in self.blocks:
            if b[0] == "h2":
                body.append(f"<h2>{e(b[1])}</h2>")
            elif b[0] == "p":
                body.append(f"<p>{e(b[1])}</p>")
            elif b[0] == "table":
                head = "".join(f"<th>{e(h)}</th>" for h in b[1])
                rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in b[2])
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            elif b[0] == "img":
                body.append(f'<figure><img src="{e(b[1])}" alt="{e(b[2])}"><figcaption>{e(b[2])}</figcaption></figure>')
        style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
                 "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;"
                 "text-align:right}th{background:#f3f3f3}img{max-width:100%}figcaption{color:#555}")
        return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{e(self.title)}</title>"
                f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")

    def write(self, directory: Path) -> tuple[Path, Path]:
        md, page = Path(directory) / "report.md", Path(directory) / "report.html"
        write_atomic(md, self.markdown())
        write_atomic(page, self.html())
        return md, page
