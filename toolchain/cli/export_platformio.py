"""tinyml export-platformio MODEL_OR_DIR --board B -o DIR: a PlatformIO project that builds what `tinyml build` does."""
from __future__ import annotations

import tempfile
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
        from toolchain.export.platformio import board_id, check_exportable, check_kernels, export_platformio
        from toolchain.pipeline.api import arena_regions, build_stage, compile_stage, load_compiled

        board = get_board(args.board)
        board_id(board)  # no PlatformIO id: refused before any work
        out = args.out
        if out.exists() and not args.force:
            raise ToolchainError(f"-o/--out {out} exists", "give a new directory, or --force to replace it")
        check_output_dir(out, "-o/--out")
        if not args.model.exists():
            raise ToolchainError(f"{args.model} does not exist", "give an int8 .tflite or a `tinyml compile` directory")
        with tempfile.TemporaryDirectory(prefix="tinyml-pio-") as tmp:
            work = Path(tmp)
            if args.model.is_dir():
                if args.kernels:
                    raise ToolchainError("--kernels applies to a .tflite only: the directory is compiled already")
                check_exportable(args.model, board)
                compiled = load_compiled(args.model)
            else:
                kernels = args.kernels or board.kernels
                check_kernels(board, kernels)
                print(f"compiling {args.model} for the {kernels} kernels")
                compiled = compile_stage(args.model, work / "c", target=kernels,
                                         regions=arena_regions(board) if board.extra_ram else None)
                check_exportable(compiled.out_dir, board)
            print(f"building firmware for {board.name} with CMake (for the stack bound)")
            image = build_stage(compiled, board, work / "fw", samples=args.samples, seed=args.seed,
                                keep_testset=True)
            project = export_platformio(compiled.out_dir, board, out, stack_size=image.sizes.stack_reserved,
                                        platform=args.platform)
        env = project.env
        print(f"wrote {out}: [env:{env.env}] platform {env.platform}, board {env.board_id}, upload "
              f"{env.upload_protocol}; stack {project.stack_size:,} B")
        print(f"  cd {out} && pio run -t upload && pio device monitor -b 115200")
        return 0
