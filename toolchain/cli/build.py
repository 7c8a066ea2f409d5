"""tinyml build MODEL_DIR --board B [--harness eembc]: firmware image from a compiled model directory, with a size
report."""
from __future__ import annotations

from pathlib import Path

from toolchain.boards import get_board
from toolchain.cli.base import Command, check_output_dir, command, positive_int
from toolchain.errors import ToolchainError
from toolchain.pipeline.api import EEMBC_PROFILES
from toolchain.report.memory import ram_rows
from toolchain.report.table import format_table


def print_sizes(sizes, board) -> None:
    """`sizes`: a `FirmwareSizes` (bytes by part in flash, the main RAM and each extra RAM region it uses)."""
    rows = [["flash", part, n] for part, n in sorted(sizes.flash.items(), key=lambda kv: -kv[1])]
    rows.append(["flash", f"total (of {board.flash.size:,})", sizes.flash_total])
    rows += [["ram", part, n] for part, n in sorted(sizes.ram.items(), key=lambda kv: -kv[1])]
    rows.append(["ram", f"total (of {board.ram.size:,})", sizes.ram_total])
    for region in board.extra_ram:
        parts = (sizes.regions or {}).get(region.name)
        if parts:
            rows += [[region.name, part, n] for part, n in sorted(parts.items(), key=lambda kv: -kv[1])]
            rows.append([region.name, f"total (of {region.size:,})", sizes.region_total(region.name)])
    print(format_table(["memory", "part", "bytes"], rows, title=f"firmware size on {board.name}"))


def print_stack(sizes) -> None:
    """The static stack bound beside the stack reserved from it (`sizes`: a `FirmwareSizes`)."""
    from toolchain.pipeline.api import STACK_MARGIN

    bound = sizes.stack_bound
    if bound is None:
        return
    rule = (f"bound + {STACK_MARGIN} B margin, rounded up to 8" if bound.bytes is not None
            else "the default: the bound is unknown")
    print(f"stack: static bound {bound.describe()}")
    print(f"stack: reserved {sizes.stack_reserved:,} B ({rule})")


@command("build")
class Build(Command):
    help = "build the firmware (CMake + arm-none-eabi-gcc) for a compiled model directory"

    def add_arguments(self, p):
        p.add_argument("model_dir", type=Path, help="directory written by `tinyml compile`")
        p.add_argument("--board", default="mps2-an386", help="target board (default mps2-an386; see `tinyml boards`)")
        p.add_argument("--build-dir", type=Path, help="CMake build directory (default MODEL_DIR/fw-BOARD)")
        p.add_argument("--samples", type=positive_int, default=4,
                       help="random test inputs to embed when MODEL_DIR has no testset.c (default 4)")
        p.add_argument("--weights-in", choices=("flash", "ram"), default="flash",
                       help="where the weights live: flash (default, read in place) or ram (copied at start-up); "
                            "the arena's regions are the compile's (`tinyml run --arena-region`)")
        p.add_argument("--harness", choices=("harness", "eembc"), default="harness",
                       help="the application: harness (default: our benchmark harness with an embedded test set) or "
                            "eembc (the MLPerf Tiny / EEMBC runner protocol, driven by a host over the UART; "
                            "docs/PROTOCOL.md)")
        p.add_argument("--eembc-profile", choices=EEMBC_PROFILES,
                       help="with --harness eembc: the benchmark the model answers for, which fixes the input format "
                            "the host sends (default: deduced from the model's input shape)")

    def run(self, args):
        from toolchain.pipeline.api import build_stage, eembc_profile, load_compiled

        if args.eembc_profile is not None and args.harness != "eembc":
            raise ToolchainError("--eembc-profile applies to --harness eembc only")
        board = get_board(args.board)
        check_output_dir(args.build_dir, "--build-dir")
        compiled = load_compiled(args.model_dir)
        build_dir = args.build_dir or args.model_dir / f"fw-{board.name}"
        fw = build_stage(compiled, board, build_dir, samples=args.samples, keep_testset=True,
                         weights_in=args.weights_in, harness=args.harness, eembc=args.eembc_profile)
        print_sizes(fw.sizes, board)
        print_stack(fw.sizes)
        bound = fw.sizes.stack_bound.bytes if fw.sizes.stack_bound is not None else None
        print()
        print(format_table(["model RAM", "bytes"], ram_rows(compiled.plan, bound)))
        print(f"\nfirmware: {fw.elf} (.bin, .hex beside it)")
        if args.harness == "eembc":
            print(f"EEMBC runner mode ({eembc_profile(compiled.plan, args.eembc_profile)}): the host drives it over "
                  "the UART at 115200 8N1 (docs/PROTOCOL.md)")
        return 0

