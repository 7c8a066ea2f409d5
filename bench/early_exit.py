"""Early exits compared: no exit, T-RecX (with and without early-view assistance), SDN, BranchyNet.

    .venv/bin/python bench/early_exit.py [--tasks kws,ic] [--epochs N] [--out build/bench/early_exit]

Each task takes its shipped recipe (models/<task>.toml: generated data, training budget) and trains
every variant with the same budget and seed, changing only [exit]. For each variant it sweeps the
exit threshold on the test split and prints Markdown: the accuracy of each exit alone, and the
largest MAC reduction whose accuracy stays within 1 point of the *no-exit model* (the T-RecX paper's
comparison), plus a wide accuracy-vs-expected-MACs table (the one in docs/BENCHMARKS.md).
PNG plots and each run's sweep.json land in --out.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toolchain.fsutil import write_atomic, write_json  # noqa: E402
from toolchain.recipe import load_recipe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {  # name -> [exit] section
    "no exit": {"style": "none", "ev_assist": False, "loss_weight": None},
    "T-RecX + EV": {"style": "trecx", "ev_assist": True, "loss_weight": None},
    "T-RecX": {"style": "trecx", "ev_assist": False, "loss_weight": None},
    "SDN": {"style": "sdn", "ev_assist": False, "loss_weight": None},
    "BranchyNet": {"style": "branchy", "ev_assist": False, "loss_weight": None},
}
TABLE_THRESHOLDS = [0.5, 0.7, 0.8, 0.9, 0.95, 0.99]
TOLERANCE = 0.01


def run_variant(task: str, variant: str, epochs: int | None, dataset) -> dict:
    from toolchain import zoo
    from toolchain.train.evaluate import evaluate
    from toolchain.train.loop import train

    recipe = load_recipe(ROOT / "models" / f"{task}.toml")
    recipe = recipe.replace("exit", **VARIANTS[variant])
    if epochs is not None:
        recipe = recipe.replace("train", epochs=epochs)
    start = time.perf_counter()
    result = train(recipe, dataset, log=None)
    sweep = evaluate(result.model, dataset, TABLE_THRESHOLDS)
    return {"variant": variant, "params": zoo.folded_param_count(result.model), "sweep": sweep,
            "seconds": time.perf_counter() - start, "epochs": recipe.train.epochs}


def best_within(sweep, accuracy: float, macs: int) -> dict | None:
    """The threshold saving most MACs vs a reference (accuracy, MACs) within TOLERANCE of its accuracy."""
    rows = sweep.curve or [sweep.headline]  # no exit: the model itself
    within = [r for r in rows if r.accuracy >= accuracy - TOLERANCE - 1e-12]
    if not within:
        return None
    best = max(within, key=lambda r: (macs - r.expected_macs, r.accuracy))
    return {"threshold": best.threshold, "exit_rate": best.exit_rate, "accuracy": best.accuracy,
            "expected_macs": best.expected_macs, "reduction": 1 - best.expected_macs / macs}


def markdown(task: str, dataset_name: str, runs: list[dict]) -> str:
    from toolchain.report.table import markdown_table

    base = next(r for r in runs if r["variant"] == "no exit")["sweep"]
    base_acc, base_macs = base.final_accuracy, base.macs.final_only
    summary_rows, wide_rows = [], []
    for run in runs:
        s = run["sweep"]
        best = best_within(s, base_acc, base_macs) if s.exit_accuracy is not None else None
        exit_cell = "-" if s.exit_accuracy is None else f"{100 * s.exit_accuracy:.1f}% @ {s.macs.exit / 1e6:.2f}M"
        summary_rows.append([
            run["variant"], run["params"], exit_cell, f"{100 * s.final_accuracy:.1f}% @ {s.macs.final_only / 1e6:.2f}M",
            *(["-"] * 5 if s.exit_accuracy is None else ["-", "-", "-", "-", "none within 1 pt"] if best is None else [
                f"{best['threshold']:.2f}", f"{100 * best['exit_rate']:.0f}%", f"{100 * best['accuracy']:.1f}%",
                f"{best['expected_macs'] / 1e6:.2f}M", f"{100 * best['reduction']:.1f}%"]),
        ])
    for threshold in TABLE_THRESHOLDS:
        row = [f"{threshold:.2f}"]
        for run in runs[1:]:
            r = next(r for r in run["sweep"].rows if r.threshold == threshold)
            row.append(f"{100 * r.accuracy:.1f}% @ {r.expected_macs / 1e6:.2f}M ({100 * r.exit_rate:.0f}% exit)")
        wide_rows.append(row)
    heading = (f"{task.upper()} on generated `{dataset_name}` ({base.samples} test samples, "
               f"{runs[0]['epochs']} epochs each)")
    out = [f"### {heading}",
           "",
           f"No-exit baseline: {100 * base_acc:.1f}% at {base_macs:,} MACs. \"Best within 1 pt\": the exit threshold "
           "(0.00-1.00 by 0.01) with the fewest expected MACs whose accuracy is at least the baseline's minus 1 "
           "point; reduction relative to the baseline's MACs.",
           "",
           markdown_table(["variant", "params (folded)", "exit_1 alone", "final alone", "threshold", "exit rate",
                           "accuracy", "expected MACs", "MAC reduction"], summary_rows),
           "",
           "Accuracy @ expected MACs per threshold (exit when max softmax >= threshold):",
           "",
           markdown_table(["threshold", *[r["variant"] for r in runs[1:]]], wide_rows),
           ""]
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="kws,ic", help="comma-separated recipes (default kws,ic)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, 'no exit' first")
    parser.add_argument("--epochs", type=int, help="override the recipes' epochs")
    parser.add_argument("--out", type=Path, default=Path("build/bench/early_exit"))
    args = parser.parse_args(argv)
    from toolchain.report.sweep import plot_png
    from toolchain.train.loop import load_dataset

    variants = [v.strip() for v in args.variants.split(",")]
    if variants[0] != "no exit" or any(v not in VARIANTS for v in variants):
        parser.error(f"variants: 'no exit' first, then any of {', '.join(list(VARIANTS)[1:])}")
    sections = []
    for task in args.tasks.split(","):
        recipe = load_recipe(ROOT / "models" / f"{task}.toml")
        dataset = load_dataset(recipe)
        runs = []
        for variant in variants:
            run = run_variant(task, variant, args.epochs, dataset)
            s = run["sweep"]
            print(f"{task} {variant}: final {100 * s.final_accuracy:.1f}%"
                  + ("" if s.exit_accuracy is None else f", exit_1 {100 * s.exit_accuracy:.1f}%")
                  + f" ({run['seconds']:.0f} s)", file=sys.stderr, flush=True)
            write_json(args.out / task / f"{variant.replace(' ', '_').replace('+', 'plus')}.json",
                       {"variant": variant, "params": run["params"], "seconds": round(run["seconds"], 1),
                        **s.to_dict()})
            runs.append(run)
        write_atomic(args.out / f"{task}.png", plot_png({r["variant"]: r["sweep"] for r in runs},
                                                        title=f"{task.upper()} on {dataset.name}"))
        sections.append(markdown(task, dataset.name, runs))
    text = "\n".join(sections)
    write_atomic(args.out / "early_exit.md", text)
    print(text)
    print(json.dumps({"plots": [str(args.out / f"{t}.png") for t in args.tasks.split(",")]}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
