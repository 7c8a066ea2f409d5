"""tinyml flash MODEL --board B: compile, build, flash a real board (or any GDB server), read its UART, check."""
from __future__ import annotations

from pathlib import Path

from toolchain.boards import get_board
from toolchain.cli.base import (
    Command, add_bands_argument, check_output_dir, check_output_file, command, positive_int,
)
from toolchain.cli.run import DEFAULT_SAMPLES, add_device_arguments, print_run
from toolchain.errors import ToolchainError
from toolchain.fsutil import write_json
from toolchain.pipeline.api import EEMBC_PROFILES, HARNESSES, KERNEL_TARGETS
from toolchain.probes import DEFAULT_GDB_RESET, PROBES, ProbeOptions, default_probe

PIPELINE_MODEL = Path("export") / "model.tflite"  # in a `tinyml pipeline` run directory


def resolve_model(path: Path) -> Path:
    """A .tflite, or the int8 model of a `tinyml pipeline` run directory."""
    if path.is_dir():
        if (path / PIPELINE_MODEL).is_file():
            return path / PIPELINE_MODEL
        raise ToolchainError(f"{path} is a directory without {PIPELINE_MODEL}",
                             "pass a .tflite or a `tinyml pipeline` run directory")
    if not path.is_file():
        raise ToolchainError(f"{path} does not exist", "pass a .tflite or a `tinyml pipeline` run directory")
    return path


def print_eembc(check, board, port) -> None:
    from toolchain.report.table import format_table

    laps = ", ".join(f"{us:,.0f}" for us in check.us_per_inference)
    print(format_table(["figure", "value"], [
        ["firmware", f"{check.image.elf} (EEMBC runner mode)"], ["name", check.name], ["profile", check.profile],
        ["int8 outputs identical to LiteRT BUILTIN_REF", f"{check.exact}/{check.samples} samples"],
        ["m-lap-us per inference", f"{laps} ({'board clock' if not board.emulated else 'emulator: not real time'})"],
    ], title=f"EEMBC runner mode on {board.name}"))
    print(f"\nthe board is ready for the EEMBC EnergyRunner (performance mode): connect it at 115200 8N1"
          f"{f' on {port}' if port else ''}; the runner sends name%, profile%, db load N%, db ...%, infer N W%")


@command("flash")
class Flash(Command):
    help = ("compile, build and flash a .tflite onto a board, read its results over the serial port: bit-exact "
            "check, cycles and time measured on the board, memory")

    def add_arguments(self, p):
        p.add_argument("model", type=Path, help="fully int8 .tflite, or a `tinyml pipeline` run directory")
        p.add_argument("--board", required=True, help="the board (see `tinyml boards`: how each is flashed)")
        p.add_argument("--probe", choices=PROBES,
                       help="openocd (the board's config), pyocd (its target name; pip extra 'probes') or gdb (any "
                            "running GDB server, --gdb-server) (default: the board's [flash] method)")
        p.add_argument("--gdb-server", metavar="HOST:PORT",
                       help="--probe gdb: the GDB server to load through (OpenOCD :3333, pyocd gdbserver, "
                            "JLinkGDBServer :2331, QEMU -gdb)")
        p.add_argument("--gdb-reset", default=DEFAULT_GDB_RESET, metavar="CMD",
                       help=f"--probe gdb: monitor command that resets and halts the core before loading "
                            f"(default '{DEFAULT_GDB_RESET}'; '' for none)")
        p.add_argument("--probe-id", metavar="SERIAL", help="the probe's serial number when several are connected")
        p.add_argument("--port", help="the board's serial port, e.g. /dev/ttyACM0, or a pyserial URL such as "
                                      "socket://host:port (default: the one ST-LINK/J-Link/DAPLink port found)")
        p.add_argument("--baud", type=positive_int, default=115200, help="baud rate (default 115200, 8N1)")
        p.add_argument("--kernels", choices=KERNEL_TARGETS, help="kernel path (default: the board's)")
        add_bands_argument(p)
        add_device_arguments(p, "build/flash", "seconds to wait for the board's results after flashing (default 300)")
        p.add_argument("--harness", choices=HARNESSES, default="harness",
                       help="harness (default: our benchmark harness, its report as `tinyml run`'s) or eembc (the "
                            "MLPerf Tiny / EEMBC runner mode: flashed, then checked over the runner's protocol and "
                            "left ready for the EnergyRunner)")
        p.add_argument("--eembc-profile", choices=EEMBC_PROFILES,
                       help="with --harness eembc: kws01, vww01, ic01 or ad01 (default: from the model's input)")

    def run(self, args):
        from toolchain.pipeline import api

        board = get_board(args.board)
        model = resolve_model(args.model)
        out = args.out or Path("build/flash") / f"{model.stem}-{board.name}"
        check_output_dir(out, "--out")
        check_output_file(args.json, "--json")
        inputs, samples = None, args.samples or DEFAULT_SAMPLES
        if args.inputs:
            inputs = api.read_inputs(args.inputs, model, args.samples)
            samples = len(inputs)
        options = ProbeOptions(gdb_server=args.gdb_server, gdb_reset=args.gdb_reset, probe_id=args.probe_id)
        if args.eembc_profile is not None and args.harness != "eembc":
            raise ToolchainError("--eembc-profile applies to --harness eembc only")
        if args.harness == "eembc":
            check = api.flash_eembc(model, board, out, probe=args.probe or default_probe(board), probe_options=options,
                                    port=args.port, baud=args.baud, timeout=min(args.timeout, 600.0),
                                    profile=args.eembc_profile, samples=samples, kernels=args.kernels,
                                    bands=args.bands, weights_in=args.weights_in,
                                    progress=lambda msg: print(f"... {msg}", flush=True))
            print_eembc(check, board, args.port)
            return 0 if check.exact == check.samples else 1
        result = api.flash(model, board, out, probe=args.probe or default_probe(board), probe_options=options,
                           port=args.port, baud=args.baud, timeout=args.timeout, inputs=inputs, samples=samples,
                           kernels=args.kernels, bands=args.bands, weights_in=args.weights_in,
                           progress=lambda msg: print(f"... {msg}", flush=True))
        print_run(result, api.tflm_arena(model)[0])
        result.save(out / "result")
        if args.json:
            write_json(args.json, result.to_json())
            print(f"\nwrote {args.json}")
        return 0 if result.bit_exact else 1
