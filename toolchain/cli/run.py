"""tinyml run MODEL.tflite --board B: compile, build, run in the emulator, check bit-exactness, measure."""
from __future__ import annotations

from pathlib import Path

from toolchain.boards import get_board
from toolchain.cli.base import (
    Command, add_bands_argument, check_output_dir, check_output_file, command, positive_float, positive_int,
    probability,
)
from toolchain.cli.build import print_sizes, print_stack
from toolchain.pipeline.api import KERNEL_TARGETS, REFERENCES, WEIGHTS_IN
from toolchain.fsutil import write_json
from toolchain.report.memory import ram_rows
from toolchain.report.table import format_table


def print_run(result, tflm=None) -> None:
    s = result.summary()
    silicon = result.on_silicon
    cycles = result.layer_cycles(0) if s["cycles_mean"] is not None else None
    if silicon:
        rows = [[i, op, macs, cyc, cyc / macs if cyc is not None and macs else None]
                for i, ((op, macs), cyc) in enumerate(zip(result.run.layers, cycles))]
        header = ["#", "op", "MACs", "cycles", "cycles/MAC"]
    else:
        layers = result.layer_instructions(0)
        rows = [[i, op, macs, round(ins) if ins is not None else None, ins / macs if ins and macs else None]
                + ([cyc] if cycles is not None else [])
                for i, ((op, macs), ins, cyc) in enumerate(zip(result.run.layers, layers,
                                                               cycles or [None] * len(layers)))]
        header = ["#", "op", "MACs", "instructions", "instr/MAC"] + (["est. cycles"] if cycles else [])
    print(format_table(header, rows, title=f"per layer (sample 0) on {s['board']}, {s['layer_counts']}"))
    print()
    print_sizes(result.firmware, result.board)
    print_stack(result.firmware)
    print()
    mean = " (mean)" if s["exits"] else ""
    count_rows = [["instructions / inference" + mean, s["instructions_mean"]],
                  ["instructions / MAC", round(s["instructions_per_mac"], 2) if s["instructions_per_mac"] else "-"]]
    if silicon:
        latency = [f"latency @ {s['clock_hz'] / 1e6:g} MHz (measured)"]
        count_rows = [[f"cycles / inference{mean} (DWT CYCCNT)", s["cycles_mean"]],
                      ["cycles / MAC", round(s["cycles_per_mac"], 2) if s["cycles_per_mac"] else "-"]]
        cycle_rows = []
        title = "summary (measured on the board: DWT cycles)"
    elif s["cycles_mean"] is not None:
        latency = ["estimated latency @ {:g} MHz (from estimated cycles)".format(s["clock_hz"] / 1e6)]
        cycle_rows = [[f"estimated cycles / inference{mean} (no wait states)", s["cycles_mean"]],
                      ["estimated cycles / MAC", round(s["cycles_per_mac"], 2) if s["cycles_per_mac"] else "-"]]
        title = f"summary (emulator: instruction counts; cycles estimated: {s['cycle_model']})"
    else:
        cpi = f"CPI {s['cpi']:g}" + ("" if s["cpi_calibrated"] else ", uncalibrated")
        latency = [f"estimated latency @ {s['clock_hz'] / 1e6:g} MHz ({cpi})"]
        cycle_rows = []
        title = "summary (emulator: instruction counts, not cycles)"
    print(format_table(["figure", "value"], [
        ["kernel path", s["kernels"]],
        [f"bit-exact vs {s['reference']}", f"{'yes' if s['bit_exact'] else 'NO'} ({s['samples']} samples)"],
        *([["early exits taken (rate)", f"{s['exit_rate']:.0%} at int8 threshold {s['exit_threshold']}"]]
          if s["exits"] else []),
        *count_rows,
        *cycle_rows,
        [*latency, f"{s['estimated_latency_ms']:.2f} ms"],
        ["arena (static, exact)", s["arena_bytes"]],
        ["stack high-water (measured)", s["stack_bytes"]],
        ["stack bound (static, worst case)", "unknown" if s["stack_bound_bytes"] is None else s["stack_bound_bytes"]],
        ["stack reserved", s["stack_reserved_bytes"]],
        ["flash total", s["flash_bytes"]],
    ], title=title))
    print()
    print(format_table(["model RAM", "bytes"], ram_rows(result.plan, s["stack_bound_bytes"], tflm)))
    if not result.exits_agree:
        print(f"  exit mismatch: device {result.exits} vs host {result.expected_exits}")
    for m in result.mismatches[:5]:
        print(f"  mismatch: sample {m.sample} output '{m.output}' {m.count}/{m.size} differ at {m.positions}")


DEFAULT_SAMPLES = 4  # random inputs embedded when no --inputs are given


@command("run")
class Run(Command):
    help = "compile, build and run a .tflite in the emulator: bit-exact check, instructions, memory"

    def add_arguments(self, p):
        p.add_argument("model", type=Path, help="fully int8 .tflite")
        p.add_argument("--board", default="mps2-an386", help="emulated board (default mps2-an386)")
        p.add_argument("--kernels", choices=KERNEL_TARGETS,
                       help="kernel path: ref, dsp, mve, or cmsis-nn (CMSIS_NN_ROOT=<your CMSIS-NN checkout>) "
                            "(default: the board's, see `tinyml boards`)")
        p.add_argument("--reference", choices=REFERENCES,
                       help="whose rounding to reproduce and check against: litert (LiteRT BUILTIN_REF, the default) "
                            "or tflm (tflite-micro and CMSIS-NN: FULLY_CONNECTED rounds twice; the default of "
                            "--kernels cmsis-nn)")
        add_bands_argument(p)
        p.add_argument("--arena-region", metavar="NAME",
                       help="put the whole arena in this RAM region (ram or an extra one, see `tinyml boards`; "
                            "default: the main RAM, spilling its largest buffers to the extra regions in order)")
        p.add_argument("--weights-in", choices=WEIGHTS_IN, default="flash",
                       help="where the weights live: flash (default, read in place) or ram (copied at start-up)")
        p.add_argument("--inputs", type=Path, help=".npy of shape [N, *input]; float is quantized (default random)")
        p.add_argument("--samples", type=positive_int,
                       help="samples to embed and run (default: every sample of --inputs, else 4 random ones)")
        p.add_argument("--out", type=Path, help="work directory (default build/run/<model>-<board>)")
        p.add_argument("--json", type=Path, help="write the results (outputs included) as JSON")
        p.add_argument("--timeout", type=positive_float, default=300.0,
                       help="emulator timeout in seconds (default 300)")
        p.add_argument("--early-exit", action="store_true",
                       help="treat the outputs other than the final one as early exits (int8 softmax)")
        p.add_argument("--threshold", type=probability, default=1.0,
                       help="leave at an exit when its top probability >= this, in [0, 1] (default 1.0: never)")
        p.add_argument("--exact", action="store_true",
                       help="count every instruction per layer with a QEMU TCG plugin (exact, slightly slower)")
        p.add_argument("--dump-tensors", action="store_true",
                       help="print every layer's output over the UART and compare each with LiteRT's intermediate "
                            "tensor: says at which layer a difference starts (counts of such a run include the dump)")

    def run(self, args):
        from toolchain.pipeline import api

        board = get_board(args.board)
        board.check_emulated()
        out = args.out or Path("build/run") / f"{args.model.stem}-{board.name}"
        check_output_dir(out, "--out")
        check_output_file(args.json, "--json")
        inputs, samples = None, args.samples or DEFAULT_SAMPLES
        if args.inputs:
            inputs = api.read_inputs(args.inputs, args.model, args.samples)
            samples = len(inputs)
        result = api.deploy(args.model, board, out, inputs=inputs, samples=samples, timeout=args.timeout,
                            exact=args.exact, early_exit=args.early_exit,
                            exit_threshold=api.exit_threshold(args.threshold), dump_tensors=args.dump_tensors,
                            kernels=args.kernels, reference=args.reference, bands=args.bands,
                            arena_region=args.arena_region, weights_in=args.weights_in,
                            progress=lambda msg: print(f"... {msg}", flush=True))
        print_run(result, api.tflm_arena(args.model)[0])
        if result.tensors is not None:
            print(f"\nlayer by layer (--dump-tensors; the instruction counts above include the dump): "
                  f"{result.tensors.summary()}")
        if args.json:
            write_json(args.json, result.to_json())
            print(f"\nwrote {args.json}")
        return 0 if result.bit_exact else 1
