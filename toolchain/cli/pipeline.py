"""tinyml pipeline RECIPE: train -> compress -> export -> compile -> build -> run, cached, with a summary."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from toolchain.cli.base import Command, check_output_dir, command, positive_int


@command("pipeline")
class PipelineCommand(Command):
    help = "run a recipe end to end (train, compress, int8, C, firmware, emulator) with a summary and report"

    def add_arguments(self, p):
        p.add_argument("recipe", type=Path, help="models/<name>.toml")
        p.add_argument("--board", help="override the recipe's [target] board")
        p.add_argument("--out", type=Path, help="run directory (default build/<recipe>)")
        p.add_argument("--epochs", type=positive_int, help="override [train] epochs (e.g. 1 for a smoke run)")
        p.add_argument("--samples", type=positive_int, help="override [target] samples run on the device")

    def run(self, args):
        from toolchain.pipeline.run import PipelineRun
        from toolchain.pipeline.summary import print_summary, summarize, write_report
        from toolchain.recipe import load_recipe

        recipe = load_recipe(args.recipe)
        if args.epochs is not None:
            recipe = recipe.replace("train", epochs=args.epochs)
        if args.samples is not None:
            recipe = recipe.replace("target", samples=args.samples)
        root = args.out or Path("build") / recipe.name
        check_output_dir(root, "--out")
        start = time.monotonic()
        run = PipelineRun(recipe, root, board=args.board)
        try:
            results = run.all()
        except KeyboardInterrupt:  # finished stages are kept; the interrupted one left nothing behind
            print("interrupted; re-run to resume", file=sys.stderr)
            return 130
        md, page = write_report(root, f"{recipe.name}: {recipe.model.name} on {run.board.name}")
        print()
        print_summary(summarize(root), title=f"summary: {recipe.name} on {run.board.name}")
        cached = sum(r.cached for r in results)
        print(f"\n{len(results)} stages ({cached} up to date) in {time.monotonic() - start:.1f} s; "
              f"report: {md} and {page}")
        return 0


@command("report")
class ReportCommand(Command):
    help = "write report.md, report.html and plots for a pipeline run directory"

    def add_arguments(self, p):
        p.add_argument("run_dir", type=Path, help="directory written by `tinyml pipeline`")

    def run(self, args):
        from toolchain.errors import ToolchainError
        from toolchain.pipeline.summary import write_report

        if not (args.run_dir / "run" / "manifest.json").is_file():
            raise ToolchainError(f"{args.run_dir} has no finished pipeline run (no run/manifest.json)",
                                 "run `tinyml pipeline models/<name>.toml --out DIR` first")
        md, page = write_report(args.run_dir, f"pipeline run {args.run_dir.name}")
        print(f"wrote {md}, {page} and the plots beside them")
        return 0
