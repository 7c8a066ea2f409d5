"""tinyml demo: the built-in default job, `tinyml pipeline models/kws.toml` into build/demo.

KWS DS-CNN (MLPerf Tiny) with a T-RecX early exit, trained on keywords spoken by espeak-ng, full int8,
compiled to C, built for an emulated Cortex-M4 (mps2-an386), run in QEMU with on-device early exit,
checked bit-exact against LiteRT on every sample, measured, reported.
"""
from __future__ import annotations

from pathlib import Path

from toolchain.cli.base import Command, command, positive_int
from toolchain.cli.pipeline import PipelineCommand
from toolchain.paths import MODELS_DIR

DEFAULT_RECIPE = MODELS_DIR / "kws.toml"


@command("demo")
class Demo(Command):
    help = "run the built-in default job: the KWS T-RecX pipeline (train -> int8 -> C -> QEMU) with a report"

    def add_arguments(self, p):
        p.add_argument("--out", type=Path, default=Path("build/demo"), help="run directory (default build/demo)")
        p.add_argument("--board", help="emulated board (default: the recipe's, mps2-an386)")
        p.add_argument("--epochs", type=positive_int, help="override the recipe's training epochs")

    def run(self, args):
        args.recipe, args.samples = DEFAULT_RECIPE, None
        return PipelineCommand().run(args)
