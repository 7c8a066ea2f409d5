"""A threshold sweep (`train.evaluate.Sweep`) as a terminal table, Markdown, report files and a plot."""
from __future__ import annotations

from pathlib import Path

from toolchain.fsutil import write_atomic, write_json
from toolchain.report.plots import figure, png_bytes
from toolchain.report.table import format_table, markdown_table


def format_sweep(result, title: str | None = None) -> str:
    headers, rows = result.table_rows()
    return format_table(headers, rows, title=title) + "\n" + "\n".join(result.summary_lines())


def sweep_markdown(result, title: str | None = None) -> str:
    headers, rows = result.table_rows()
    out = [f"## {title}", ""] if title else []
    out += [markdown_table(headers, rows), ""] + [f"- {line}" for line in result.summary_lines()]
    return "\n".join(out) + "\n"


def write_report(result, out_dir: Path, *, title: str, stem: str = "sweep") -> dict[str, Path]:
    """`<stem>.md`, `<stem>.csv`, `<stem>.json` and `<stem>.png` (accuracy vs expected MACs) in out_dir."""
    out_dir = Path(out_dir)
    paths = {ext: out_dir / f"{stem}.{ext}" for ext in ("md", "csv", "json", "png")}
    write_atomic(paths["md"], sweep_markdown(result, title))
    write_atomic(paths["csv"], result.to_csv())
    write_json(paths["json"], result.to_dict())
    write_atomic(paths["png"], plot_png({title: result}))
    return paths


def plot_png(curves: dict, title: str = "Accuracy vs expected MACs") -> bytes:
    """A PNG of accuracy vs expected MACs for each labelled sweep (its fine-grid points, its no-exit point)."""
    fig, ax = figure()
    for label, result in curves.items():
        line = None
        if result.curve:
            points = sorted((r.expected_macs / 1e6, 100 * r.accuracy) for r in result.curve)
            line, = ax.plot(*zip(*points), marker=".", markersize=3, linewidth=1, label=label)
        ax.scatter([result.macs.final_only / 1e6], [100 * result.final_accuracy], marker="*", s=90,
                   color=line.get_color() if line else None, label=None if line else label,
                   edgecolors="black", linewidths=0.5, zorder=3)
        if result.headline is not None and line is not None:
            h = result.headline
            ax.scatter([h.expected_macs / 1e6], [100 * h.accuracy], marker="D", s=40, color=line.get_color(),
                       edgecolors="black", linewidths=0.5, zorder=3)
    ax.set_xlabel("expected MACs per sample (millions)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{title}\n(star: final exit alone; diamond: fewest MACs within 1 pt of the star)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return png_bytes(fig)
