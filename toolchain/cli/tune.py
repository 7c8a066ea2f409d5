"""tinyml tune RECIPE: the recipe's [tune] search on Ray Tune with PASHA (or ASHA, FIFO), aware of a board."""
from __future__ import annotations

from pathlib import Path

from toolchain.cli.base import Command, command, positive_int
from toolchain.tune.space import SCHEDULERS


@command("tune")
class Tune(Command):
    help = ("tune a recipe's [tune] search space on Ray Tune (PASHA by default): configurations too big for --board "
            "are recorded as infeasible without training; writes the curves, the Pareto front and best.toml")

    def add_arguments(self, p):
        p.add_argument("recipe", type=Path, help="recipe with a [tune] section (models/<name>.toml)")
        p.add_argument("--board", help="only configurations whose int8 model fits this board train "
                                       "(see `tinyml boards`)")
        p.add_argument("--trials", type=positive_int, help="configurations to sample (default: [tune] trials)")
        p.add_argument("--scheduler", choices=SCHEDULERS, default="pasha",
                       help="pasha (default: progressive ASHA, ours), asha (Ray's) or fifo (every trial to the "
                            "maximum budget)")
        p.add_argument("--ray-address", metavar="ADDR",
                       help="an existing Ray cluster, e.g. 127.0.0.1:6379 (default: Ray on this machine, one trial "
                            "per core)")
        p.add_argument("--out", type=Path, help="output directory (default build/tune/<recipe>-<scheduler>)")
        p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")

    def run(self, args):
        from toolchain.recipe import load_recipe
        from toolchain.tune.report import print_tables
        from toolchain.tune.run import TuneOptions, check_options, run_tune

        recipe = load_recipe(args.recipe)
        out = args.out or Path("build/tune") / f"{recipe.name}-{args.scheduler}"
        options = TuneOptions(out=out, board=args.board, trials=args.trials, scheduler=args.scheduler,
                              ray_address=args.ray_address, resume=args.resume)
        check_options(recipe, options)
        result = run_tune(recipe, options, progress=lambda msg: print(f"... {msg}", flush=True))
        print()
        print_tables(result)
        best = out / "best.toml"
        print(f"\nwrote {out}/: trials.json, curves.png, report.md"
              + (f", pareto.png, best.toml (tinyml pipeline {best})" if best.exists() else
                 " (no feasible trial finished: no best.toml)"))
        return 0 if best.exists() else 1
