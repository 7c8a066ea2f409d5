"""PASHA vs ASHA on the same search over KWS (generated keywords): epochs trained, wall time, best accuracy.

    .venv/bin/python bench/tune.py [--trials 12] [--max-epochs 27] [--samples-per-class 200] [--out build/bench-tune]
        [--no-retrain]

Both schedulers get the same recipe (models/kws.toml, a smaller keyword set), the same search space, the same
seed (so the same sampled configurations) and the same number of trials, on Ray Tune on this machine. Per scheduler:
the epochs trained over all trials, the wall time, and the best trial's validation accuracy at the last epoch it
trained. Because PASHA may stop its best trial earlier than ASHA does, each scheduler's best configuration is also
retrained for the full budget (max epochs) and scored on the test split: that is the accuracy a user gets from
`tinyml pipeline DIR/best.toml`. Goal (issue 18): PASHA trains at least 2x fewer epochs for a best accuracy within
1 point.

Writes OUT/report.md and OUT/tune.json, and prints the table.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toolchain.fsutil import write_atomic, write_json  # noqa: E402
from toolchain.recipe import load_recipe  # noqa: E402
from toolchain.report.table import format_table, markdown_table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SPACE = {"train.lr": {"loguniform": [2e-4, 5e-3]}, "train.batch_size": {"choice": [50, 100, 200]},
         "exit.loss_weight": {"uniform": [0.1, 0.6]}}


def bench_recipe(args):
    recipe = load_recipe(REPO / "models" / "kws.toml")
    recipe = recipe.replace("dataset", options={**recipe.dataset.options, "samples_per_class": args.samples_per_class})
    return recipe.replace("tune", metric="val_accuracy", min_epochs=1, max_epochs=args.max_epochs,
                          reduction_factor=3, trials=args.trials, seed=0, space=SPACE)


def retrain(recipe, config: dict) -> float:
    """The configuration trained for the full budget; its final output's test accuracy."""
    from toolchain.train.loop import load_dataset, train
    from toolchain.tune.space import derived_recipe

    derived = derived_recipe(recipe, config)
    result = train(derived, load_dataset(derived), log=None)
    return float(result.test["accuracy"]["final"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--max-epochs", type=int, default=27)
    p.add_argument("--samples-per-class", type=int, default=200)
    p.add_argument("--out", type=Path, default=REPO / "build" / "bench-tune")
    p.add_argument("--no-retrain", action="store_true", help="skip retraining each best configuration")
    args = p.parse_args()
    from toolchain.tune.run import TuneOptions, run_tune

    recipe = bench_recipe(args)
    rows, results = [], {}
    for scheduler in ("asha", "pasha"):
        out = args.out / scheduler
        if (out / "ray").exists():
            import shutil

            shutil.rmtree(out)
        start = time.perf_counter()
        result = run_tune(recipe, TuneOptions(out=out, scheduler=scheduler, trials=args.trials),
                          progress=lambda msg: print(f"... {msg}", flush=True))
        best = result.ranked()[0]
        tuning = time.perf_counter() - start
        results[scheduler] = {"epochs": result.total_epochs, "seconds": round(tuning, 1),
                              "best_trial": best.trial_id, "best_config": best.config, "best_val": best.final(),
                              "best_epochs": best.epochs, "retrained_test": None if args.no_retrain
                              else retrain(recipe, best.config),
                              "budget": result.max_budget, "growths": result.budget_growths}
        test = results[scheduler]["retrained_test"]
        rows.append([scheduler, result.total_epochs, f"{tuning:.0f}", f"{best.final():.4f}",
                     best.epochs, "-" if test is None else f"{test:.4f}", result.max_budget or args.max_epochs])
    a, b = results["asha"], results["pasha"]
    ratio = a["epochs"] / b["epochs"]
    header = ["scheduler", "epochs trained", "tuning wall s", "best val accuracy", "its epochs",
              f"best config retrained {args.max_epochs} epochs: test accuracy", "max budget"]
    print(format_table(header, rows, title=f"KWS, {args.trials} trials, 1..{args.max_epochs} epochs, eta 3"))
    verdict = f"PASHA trains {ratio:.2f}x fewer epochs than ASHA"
    if a["retrained_test"] is not None:
        verdict += f"; retrained best: {100 * (b['retrained_test'] - a['retrained_test']):+.1f} points vs ASHA's"
    print(verdict)
    write_json(args.out / "tune.json", {"trials": args.trials, "max_epochs": args.max_epochs, **results})
    write_atomic(args.out / "report.md", "\n".join([
        f"# PASHA vs ASHA: KWS, {args.trials} trials, 1..{args.max_epochs} epochs, eta 3", "",
        markdown_table(header, rows), "", verdict, ""]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
