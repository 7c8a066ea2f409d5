"""tinyml compress [RECIPE] [--model M.keras --dataset NAME --stages prune,quantize] [-o DIR]"""
from __future__ import annotations

from pathlib import Path

from toolchain.cli.base import Command, check_output_dir, command, positive_int
from toolchain.errors import ToolchainError


@command("compress")
class Compress(Command):
    help = ("prune / distill / quantize a trained model stage by stage (a recipe's [compress] section, or --stages) "
            "and print the stage table")

    def add_arguments(self, p):
        p.add_argument("recipe", type=Path, nargs="?", help="recipe, e.g. models/kws.toml (its trained model is "
                       "read from build/<recipe>/train, as `tinyml train` writes it)")
        p.add_argument("--model", type=Path, help="a saved .keras model or `tinyml train` run directory "
                       "(default: the recipe's run)")
        p.add_argument("--dataset", help="dataset name (default: the recipe's)")
        p.add_argument("--stages", help="comma-separated stages, e.g. prune,quantize (default: the recipe's "
                       "[compress] stages); options come from the recipe's [compress.<stage>] tables or defaults")
        p.add_argument("-o", "--out", type=Path, help="output directory (default build/<recipe>/compress)")
        p.add_argument("--epochs", type=positive_int, help="override the fine-tuning epochs of every stage")
        p.add_argument("--batch-size", type=positive_int,
                       help="training batch size (default: [compress] or [train] batch_size, else 100)")
        p.add_argument("--eval-samples", type=positive_int, help="score int8 models on at most this many test samples")

    def run(self, args):
        from toolchain.pipeline import api

        recipe = None
        if args.recipe is not None:
            from toolchain.cli.train import default_run_dir
            from toolchain.recipe import load_recipe

            recipe = load_recipe(args.recipe)
            model_path = args.model or default_run_dir(recipe.name)
            out = args.out or Path("build") / recipe.name / "compress"
        else:
            if not (args.model and args.dataset and args.stages):
                raise ToolchainError("give a recipe, or --model, --dataset and --stages",
                                     "e.g. tinyml compress --model m.keras --dataset keywords --stages prune,quantize")
            model_path = args.model
            out = args.out or Path("build") / "compress" / Path(args.model).stem
        check_output_dir(out, "-o/--out")
        specs = api.compress_specs(recipe, args.stages, epochs=args.epochs)
        model = api.load_float_model(model_path)
        print("loading dataset ...", flush=True)
        dataset = api.compress_dataset(recipe, args.dataset)
        print(f"compressing {model.name} on {dataset.name}: {' -> '.join(['float'] + [s.kind for s in specs])}",
              flush=True)
        results = api.compress_stage(model, dataset, specs, out, recipe=recipe, batch_size=args.batch_size,
                                     eval_samples=args.eval_samples, progress=lambda line: print(line, flush=True))
        print()
        print(api.format_stage_table(results, title=f"stages of {model.name} ({dataset.name}, test split)"))
        print(f"\nartifacts in {out}/<i>-<stage>/ (model.keras, model.tflite, stage.json); table in {out}/stages.json")
        return 0
