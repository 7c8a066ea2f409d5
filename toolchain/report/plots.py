"""PNG plots. Every figure goes through `figure` (the house style) and `png_bytes` / `save_png`.

Figures are made with matplotlib's object API, not pyplot: no backend is selected, no display is needed and
no figure is registered anywhere, so nothing has to be closed and nothing leaks between plots.
"""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from toolchain.fsutil import write_atomic

DPI = 110


def figure(size: tuple[float, float] = (6.4, 4.4)):
    """A new figure of `size` inches and its one axes."""
    fig = Figure(figsize=size, dpi=DPI)
    return fig, fig.add_subplot()


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG, cropped to what is drawn."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def save_png(fig: Figure, path: Path) -> Path:
    """The PNG written whole or not at all."""
    write_atomic(Path(path), png_bytes(fig))
    return Path(path)


def layer_instructions(layers: list[dict], path: Path, title: str) -> Path:
    """Bars: instructions per layer, labelled with the operator; instructions/MAC on a second axis."""
    ran = [x for x in layers if x.get("instructions") is not None]
    fig, ax = figure((max(6, 0.45 * len(ran) + 2), 4))
    xs = range(len(ran))
    ax.bar(xs, [x["instructions"] for x in ran], color="#3b7dd8")
    ax.set_xticks(list(xs), [f"{x['index']} {x['op']}" for x in ran], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("instructions")
    ax.set_title(title)
    per_mac = [(i, x["instructions"] / x["macs"]) for i, x in enumerate(ran) if x.get("macs")]
    if per_mac:
        ax2 = ax.twinx()
        ax2.plot([i for i, _ in per_mac], [v for _, v in per_mac], "o", color="#d8563b")
        ax2.set_ylabel("instructions / MAC", color="#d8563b")
    return save_png(fig, path)


def arena_plan(plan, path: Path) -> Path:
    """The static arena over time: one rectangle per tensor, layers on x, byte offsets on y. `plan` is the
    compiler's typed `ModelPlan` (read by attribute: this layer does not import the compiler)."""
    fig, ax = figure((8, 4.5))
    colors = matplotlib.colormaps["tab20"].colors
    for i, t in enumerate(plan.tensors):
        ax.add_patch(Rectangle((t.first_layer, t.offset), t.last_layer - t.first_layer + 1,
                               t.bytes, facecolor=colors[i % len(colors)], edgecolor="black", linewidth=0.4))
    layers = max((t.last_layer for t in plan.tensors), default=0) + 1
    ax.set_xlim(0, layers)
    ax.set_ylim(0, max(plan.arena_bytes, 1))
    ax.set_xlabel("layer (tensor lifetime)")
    ax.set_ylabel("arena offset (bytes)")
    ax.set_title(f"static arena: {plan.arena_bytes:,} B (most alive at once: {plan.live_peak_bytes:,} B)")
    return save_png(fig, path)


def accuracy_vs_cost(rows: list[dict], path: Path, cost_key: str, cost_label: str, title: str) -> Path:
    """Accuracy against expected cost over exit thresholds; rows carry threshold, accuracy, cost_key."""
    fig, ax = figure((6, 4))
    xs = [r[cost_key] for r in rows]
    ys = [100 * r["accuracy"] for r in rows]
    ax.plot(xs, ys, "o-", color="#3b7dd8")
    for r, x, y in zip(rows, xs, ys):
        ax.annotate(f"{r['threshold']:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel(cost_label)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return save_png(fig, path)
