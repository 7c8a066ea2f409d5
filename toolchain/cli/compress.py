"""tinyml compress [RECIPE] [--model M.keras --dataset NAME --stages prune,quantize] [-o DIR]"""
from __future__ import annotations

from pathlib import Path


from toolchain.cli.base import Command, check_output_dir, command, positive_int
from toolchain.compress import recipe_section  # noqa: F401  (registers the recipe's [compress] section)
from toolchain.errors import ToolchainError


def _with_epochs(specs, epochs: int):
    from toolchain.compress.stages import StageSpec

    out = []
    for spec in specs:
        extra = {"epochs": epochs}
        if spec.kind == "distill":
            extra["teacher_epochs"] = epochs
        out.append(StageSpec(spec.kind, {**spec.options, **extra}))
    return out


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
        from toolchain.compiler.arena import arena_bytes
        from toolchain.compress.graph import load_keras
        from toolchain.compress.stages import compress, parse_stages
        from toolchain.compress.table import format_rows
        from toolchain.verify.int8 import predict_tflite

        batch_size, seed, eval_samples, options, exit_weight = 100, 0, None, {}, None
        if args.recipe is not None:
            from toolchain.cli.train import default_run_dir
            from toolchain.recipe import load_recipe
            from toolchain.train.loop import load_dataset

            recipe = load_recipe(args.recipe)
            section = recipe.section("compress")
            stage_names = args.stages if args.stages is not None else section.stages
            options = {name: getattr(section, name) for name in ("prune", "structured", "distill", "quantize")}
            batch_size = section.batch_size or recipe.train.batch_size
            seed, eval_samples = recipe.train.seed, section.eval_samples
            exit_weight = recipe.exit.loss_weight
            model_path = args.model or default_run_dir(recipe.name)
            out = args.out or Path("build") / recipe.name / "compress"
            if args.dataset:
                from toolchain.data import load
                dataset_loader = lambda: load(args.dataset, seed=recipe.dataset.seed)  # noqa: E731
            else:
                dataset_loader = lambda: load_dataset(recipe)  # noqa: E731
        else:
            if not (args.model and args.dataset and args.stages):
                raise ToolchainError("give a recipe, or --model, --dataset and --stages",
                                     "e.g. tinyml compress --model m.keras --dataset keywords --stages prune,quantize")
            from toolchain.data import load

            stage_names, model_path = args.stages, args.model
            out = args.out or Path("build") / "compress" / Path(args.model).stem
            dataset_loader = lambda: load(args.dataset)  # noqa: E731
        check_output_dir(out, "-o/--out")
        specs = parse_stages(stage_names, options)
        if not specs:
            raise ToolchainError("no compression stages given", "set [compress] stages = [...] or pass --stages")
        if args.epochs is not None:
            specs = _with_epochs(specs, args.epochs)
        batch_size = args.batch_size or batch_size
        eval_samples = args.eval_samples or eval_samples
        model = load_keras(model_path)
        print("loading dataset ...", flush=True)
        dataset = dataset_loader()
        print(f"compressing {model.name} on {dataset.name}: {' -> '.join(['float'] + [s.kind for s in specs])}",
              flush=True)
        results = compress(model, dataset, specs, out, batch_size=batch_size, seed=seed, eval_samples=eval_samples,
                           exit_weight=exit_weight, arena_estimator=arena_bytes, int8_runner=predict_tflite,
                           progress=lambda line: print(line, flush=True))
        print()
        print(format_rows(results, title=f"stages of {model.name} ({dataset.name}, test split)"))
        print(f"\nartifacts in {out}/<i>-<stage>/ (model.keras, model.tflite, stage.json); table in {out}/stages.json")
        return 0
