"""tinyml train RECIPE.toml [--out DIR] [--epochs N]: train with progress, save, report each exit."""
from __future__ import annotations

from pathlib import Path

from toolchain.cli.base import Command, check_output_dir, command, positive_int
from toolchain.report.table import format_table


def default_run_dir(recipe_name: str) -> Path:
    return Path("build") / recipe_name / "train"


def print_test_scores(test: dict, threshold: float) -> None:
    if "auc" in test:
        print(f"test ROC AUC (reconstruction error): {test['auc']:.4f} on {test['samples']} samples")
        return
    acc = test["accuracy"]
    rows = [[name, 100 * value] for name, value in acc.items()]
    combined = test.get("combined")
    if combined:
        rows.append([f"combined (exit when max softmax >= {threshold:g})", 100 * combined["accuracy"]])
    print(format_table(["test accuracy", "%"], rows, title=f"test split, {test['samples']} samples"))
    if combined:
        macs = test["macs"]
        print(f"exit rate {100 * combined['exit_rate']:.1f}%; expected MACs {combined['expected_macs']:,.0f} "
              f"vs {macs['final_only']:,} without exit ({100 * combined['mac_reduction']:.1f}% saved)")


@command("train")
class Train(Command):
    help = "train a recipe's model (with its early exit) on its dataset; saves model.keras and metrics.json"

    def add_arguments(self, p):
        p.add_argument("recipe", type=Path, help="recipe, e.g. models/kws.toml")
        p.add_argument("--out", type=Path, help="run directory (default build/<recipe>/train)")
        p.add_argument("--epochs", type=positive_int, help="override [train] epochs")

    def run(self, args):
        from toolchain.recipe import load_recipe
        from toolchain.train.loop import load_dataset, train

        recipe = load_recipe(args.recipe)
        if args.epochs is not None:
            recipe = recipe.replace("train", epochs=args.epochs)
        out = args.out or default_run_dir(recipe.name)
        check_output_dir(out, "--out")
        e = recipe.exit
        exit_text = "no exit" if e.style == "none" else f"exit {e.style}" + (" + EV-assist" if e.ev_assist else "")
        print(f"loading dataset {recipe.dataset.name!r} ...", flush=True)
        dataset = load_dataset(recipe)
        print(f"training {recipe.model.name} ({exit_text}) on {dataset.name}: {len(dataset.x_train)} train / "
              f"{len(dataset.x_val)} val / {len(dataset.x_test)} test samples, {recipe.train.epochs} epochs",
              flush=True)
        result = train(recipe, dataset, out_dir=out, log=lambda line: print(line, flush=True))
        print()
        print_test_scores(result.test, e.threshold)
        print(f"\ntrained in {result.seconds:.0f} s; model and metrics in {out}")
        return 0
