"""What a tuning run shows: the trial table, the best feasible configurations, the Pareto front, and the plots."""
from __future__ import annotations

from pathlib import Path

from toolchain.report.plots import figure, save_png
from toolchain.report.table import format_table, markdown_table
from toolchain.tune.pasha import rung_levels

BEST_SHOWN = 5
SIZE_COLUMNS = ("params", "macs", "model_ram_bytes", "weights_bytes")
SIZE_HEADERS = ["params", "MACs", "model RAM B", "flash (weights) B"]


def _value(v) -> str:
    return "-" if v is None else f"{v:.4f}"


def _config(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def trial_rows(result) -> tuple[list[str], list[list]]:
    keys = sorted({k for t in result.trials for k in t.config})
    rows = []
    for t in result.trials:
        status = "infeasible" if not t.feasible else f"{t.epochs} epochs" if t.curve else "no result"
        rows.append([t.trial_id, *[_config(t.config.get(k)) for k in keys], status, _value(t.final()),
                     *[t.sizes.get(k) for k in SIZE_COLUMNS]])
    return ["trial", *keys, "trained", result.metric, *SIZE_HEADERS], rows


def best_rows(result, trials) -> tuple[list[str], list[list]]:
    keys = sorted({k for t in result.trials for k in t.config})
    return (["trial", *keys, result.metric, "epochs", *SIZE_HEADERS],
            [[t.trial_id, *[_config(t.config.get(k)) for k in keys], _value(t.final()), t.epochs,
              *[t.sizes.get(k) for k in SIZE_COLUMNS]] for t in trials])


def summary_rows(result) -> list[list]:
    infeasible = [t for t in result.trials if not t.feasible]
    return [["scheduler", result.options.scheduler], ["trials", len(result.trials)],
            ["infeasible (not trained)", len(infeasible)], ["epochs trained, all trials", result.total_epochs],
            ["PASHA's maximum budget", "-" if result.max_budget is None else
             " -> ".join(str(b) for b in [g["old"] for g in result.budget_growths[:1]]
                         + [g["new"] for g in result.budget_growths]) or str(result.max_budget)],
            ["wall time", f"{result.seconds:.0f} s"]]


def print_tables(result) -> None:
    header, rows = trial_rows(result)
    print(format_table(header, rows, title=f"trials ({result.metric}, {result.mode}; at the last epoch trained)"))
    print()
    for t in result.trials:
        if not t.feasible:
            print(f"  {t.trial_id} infeasible: {t.reason}")
    header, rows = best_rows(result, result.ranked()[:BEST_SHOWN])
    print(format_table(header, rows, title="best feasible configurations"))
    print()
    header, rows = best_rows(result, result.pareto())
    print(format_table(header, rows, title=f"Pareto front: {result.metric} vs MACs"))
    print()
    print(format_table(["figure", "value"], summary_rows(result), title="tuning"))


def markdown(result) -> str:
    parts = [f"# Tuning {result.recipe.name}", ""]
    parts += [markdown_table(["figure", "value"], summary_rows(result)), ""]
    parts += ["## Best feasible configurations", "", markdown_table(*best_rows(result, result.ranked()[:BEST_SHOWN])),
              "", f"## Pareto front ({result.metric} vs MACs)", "", markdown_table(*best_rows(result, result.pareto())),
              "", "![pareto](pareto.png)", "", "## Every trial", "", markdown_table(*trial_rows(result)), ""]
    infeasible = [f"- {t.trial_id}: {t.reason}" for t in result.trials if not t.feasible]
    if infeasible:
        parts += ["## Infeasible (never trained)", "", *infeasible, ""]
    parts += ["## Learning curves", "", "![curves](curves.png)", ""]
    return "\n".join(parts)


def curves_png(result, path: Path) -> Path:
    """Every trial's metric per epoch, the rungs as vertical lines; below, PASHA's maximum budget as results came."""
    s = result.recipe.section("tune")
    fig, ax = figure((7, 5.5))
    for t in result.trials:
        if t.curve:
            ax.plot(range(1, len(t.curve) + 1), t.curve, marker=".", linewidth=1, markersize=3)
    for level in rung_levels(s.min_epochs, s.max_epochs, s.reduction_factor):
        ax.axvline(level, color="gray", linestyle=":", linewidth=0.8)
    ax.set_xlabel("epoch (dotted: rungs)")
    ax.set_ylabel(result.metric)
    ax.set_title(f"{result.recipe.name}: {len(result.trials)} trials, {result.options.scheduler}, "
                 f"{result.total_epochs} epochs")
    ax.grid(alpha=0.3)
    if result.max_budget is not None:
        ax.axvline(result.max_budget, color="#d83b3b", linestyle="--", linewidth=1,
                   label=f"PASHA's maximum budget ({result.max_budget})")
        ax.legend(fontsize=8, loc="best")
    if result.budget_growths:
        inset = ax.inset_axes([0.62, 0.08, 0.35, 0.3])
        steps = [(0, result.budget_growths[0]["old"])] + [(g["report"], g["new"]) for g in result.budget_growths]
        inset.step([x for x, _ in steps], [y for _, y in steps], where="post", color="#d83b3b")
        inset.set_title("max budget (epochs) by report", fontsize=7)
        inset.tick_params(labelsize=6)
    return save_png(fig, path)


def pareto_png(result, path: Path) -> Path:
    fig, ax = figure((6, 4))
    done = result.ranked()
    ax.scatter([t.sizes["macs"] for t in done], [t.final() for t in done], s=14, color="#9bb8e8", label="trials")
    front = result.pareto()
    ax.plot([t.sizes["macs"] for t in front], [t.final() for t in front], "o-", color="#3b7dd8",
            label="Pareto front")
    ax.set_xlabel("MACs")
    ax.set_ylabel(result.metric)
    ax.set_title(f"{result.recipe.name}: feasible trials")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_png(fig, path)
