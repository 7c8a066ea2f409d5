"""tinyml export-platformio MODEL_OR_DIR --board B -o DIR: a PlatformIO project that builds what `tinyml build` does."""
from __future__ import annotations

from pathlib import Path

from toolchain.boards import get_board
from toolchain.cli.base import Command, check_output_dir, command, non_negative_int, positive_int
from toolchain.errors import ToolchainError
from toolchain.pipeline.api import KERNEL_TARGETS


@command("export-platformio")
class ExportPlatformio(Command):
    help = "write a PlatformIO project (bare metal, our runtime) of a model for a board: `pio run -t upload`"

    def add_arguments(self, p):
        p.add_argument("model", type=Path, help="an int8 .tflite (compiled first) or a directory from `tinyml compile`")
        p.add_argument("--board", required=True, help="target board (see `tinyml boards`)")
        p.add_argument("-o", "--out", type=Path, required=True, help="the project directory to write (must not exist)")
        p.add_argument("--force", action="store_true", help="replace --out if it exists")
        p.add_argument("--kernels", choices=KERNEL_TARGETS,
                       help="with a .tflite: the kernel path (default: the board's)")
        p.add_argument("--samples", type=positive_int, default=4,
                       help="random test inputs to embed when the model has no testset.c (default 4)")
        p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the random test inputs (default 0)")
        p.add_argument("--platform",
                       help="PlatformIO platform spec instead of the board's (e.g. ststm32@19.6.0, or a local "
                            "symlink:///path); it then brings its own toolchain")

    def run(self, args):
        from toolchain.pipeline.api import platformio_project

        board = get_board(args.board)
        out = args.out
        if out.exists() and not args.force:
            raise ToolchainError(f"-o/--out {out} exists", "give a new directory, or --force to replace it")
        check_output_dir(out, "-o/--out")
        project = platformio_project(args.model, board, out, kernels=args.kernels, samples=args.samples,
                                     seed=args.seed, platform=args.platform, progress=print)
        env = project.env
        print(f"wrote {out}: [env:{env.env}] platform {env.platform}, board {env.board_id}, upload "
              f"{env.upload_protocol}; stack {project.stack_size:,} B")
        print(f"  cd {out} && pio run -t upload && pio device monitor -b 115200")
        return 0
