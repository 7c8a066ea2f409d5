"""tinyml evaluate RUN_DIR_OR_RECIPE [--thresholds ...]: the early-exit threshold sweep, table and PNG."""
from __future__ import annotations

from pathlib import Path

from toolchain.cli.base import Command, check_output_dir, command, probability
from toolchain.errors import ToolchainError


def resolve_run(target: Path) -> Path:
    """A run directory, or the default run directory of a recipe file."""
    from toolchain.cli.train import default_run_dir
    from toolchain.train.loop import MODEL_FILE

    if target.suffix == ".toml":
        run_dir = default_run_dir(target.stem)
        if not (run_dir / MODEL_FILE).exists():
            raise ToolchainError(f"recipe {target} has no trained run in {run_dir}",
                                 f"run `tinyml train {target}` first")
        return run_dir
    if not (target / MODEL_FILE).exists():
        raise ToolchainError(f"{target} is not a run directory (no {MODEL_FILE})",
                             "give a directory written by `tinyml train`, or its recipe .toml")
    return target


@command("evaluate")
class Evaluate(Command):
    help = "sweep the early-exit threshold of a trained run: accuracy vs expected MACs (table, CSV, PNG)"

    def add_arguments(self, p):
        p.add_argument("run", type=Path, help="run directory of `tinyml train`, or the recipe .toml")
        p.add_argument("--thresholds", type=probability, nargs="+", help="exit thresholds (default: the recipe's)")
        p.add_argument("--split", choices=["test", "val"], default="test", help="data split (default test)")
        p.add_argument("--int8", action="store_true",
                       help="evaluate the full-int8 TFLite conversion (LiteRT reference kernels) instead of Keras")
        p.add_argument("--out", type=Path, help="report directory (default RUN/evaluate)")

    def run(self, args):
        from toolchain.report.sweep import format_sweep, write_report
        from toolchain.train.evaluate import evaluate
        from toolchain.train.loop import load_dataset, load_model, load_run_recipe, reconstruction_error
        from toolchain.train.metrics import roc_auc
        from toolchain.verify.int8 import evaluate_int8

        check_output_dir(args.out, "--out")
        run_dir = resolve_run(args.run)
        recipe = load_run_recipe(run_dir)
        thresholds = args.thresholds or recipe.evaluate.thresholds
        if any(not 0 <= t <= 1 for t in thresholds):
            raise ToolchainError("thresholds must lie in [0, 1]")
        model = load_model(run_dir)
        dataset = load_dataset(recipe)
        if dataset.task == "anomaly":
            x, y = getattr(dataset, f"x_{args.split}"), getattr(dataset, f"y_{args.split}")
            print(f"{args.split} ROC AUC: {roc_auc(y, reconstruction_error(model, x)):.4f} ({len(y)} samples; "
                  "an autoencoder has no exit to sweep)")
            return 0
        out = args.out or run_dir / "evaluate"
        if args.int8:
            result = evaluate_int8(model, dataset, thresholds, out / "model_int8.tflite", split=args.split)
        else:
            result = evaluate(model, dataset, thresholds, split=args.split)
        title = f"{recipe.name}: {model.name} on {dataset.name} ({args.split}{', int8' if args.int8 else ''})"
        paths = write_report(result, out, title=title, stem="sweep_int8" if args.int8 else "sweep")
        print(format_sweep(result, title=title))
        print(f"\nwrote {paths['md']}, {paths['csv']}, {paths['json']}\nplot: {paths['png']}")
        return 0
