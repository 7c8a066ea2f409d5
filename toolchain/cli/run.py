"""tinyml run MODEL.tflite --board B [--emulator qemu|renode]: compile, build, run in the emulator, check
bit-exactness, measure."""
from __future__ import annotations

from pathlib import Path

from toolchain.boards import EMULATORS, get_board
from toolchain.cli.base import (
    Command, add_bands_argument, check_output_dir, check_output_file, command, positive_float, positive_int,
    probability,
)
from toolchain.cli.build import print_sizes, print_stack
from toolchain.pipeline.api import KERNEL_TARGETS, REFERENCES, WEIGHTS_IN
from toolchain.fsutil import write_json
from toolchain.report.memory import ram_rows
from toolchain.report.table import format_table


def print_mismatches(result) -> None:
    if not result.exits_agree:
        print(f"  exit mismatch: device {result.exits} vs host {result.expected_exits}")
    for m in result.mismatches[:5]:
        print(f"  mismatch: sample {m.sample} output '{m.output}' {m.count}/{m.size} differ at {m.positions}")


def _per_mac(value, macs):
    return value / macs if value is not None and macs else None


def _layer_table(result, s: dict) -> tuple[list[str], list[list]]:
    """Per layer of sample 0: what the run measured (instructions, DWT cycles, or SysTick ticks)."""
    layers = result.run.layers
    if result.counts_instructions:
        cycles = result.layer_cycles(0) if s["cycles_mean"] is not None else None
        rows = [[i, op, macs, None if ins is None else round(ins), _per_mac(ins, macs)] + ([cyc] if cycles else [])
                for i, ((op, macs), ins, cyc) in enumerate(zip(layers, result.layer_instructions(0),
                                                               cycles or [None] * len(layers)))]
        return ["#", "op", "MACs", "instructions", "instr/MAC"] + (["est. cycles"] if cycles else []), rows
    unit, values = ("cycles", result.layer_cycles(0)) if result.on_silicon else ("ticks", result.layer_ticks(0))
    rows = [[i, op, macs, v, _per_mac(v, macs)] for i, ((op, macs), v) in enumerate(zip(layers, values))]
    return ["#", "op", "MACs", unit, f"{unit}/MAC"], rows


def _count_rows(result, s: dict) -> tuple[list[list], str]:
    """The summary's counting rows and title, by what the run measured."""
    mean = " (mean)" if s["exits"] else ""
    latency = f"{s['estimated_latency_ms']:.2f} ms"
    mhz = f"{s['clock_hz'] / 1e6:g} MHz"
    if result.on_silicon:
        return [[f"cycles / inference{mean} (DWT CYCCNT)", s["cycles_mean"]],
                ["cycles / MAC", round(s["cycles_per_mac"], 2) if s["cycles_per_mac"] else "-"],
                [f"latency @ {mhz} (measured)", latency]], "summary (measured on the board: DWT cycles)"
    if not result.counts_instructions:
        return [["SysTick ticks / inference" + mean, s["ticks_mean"]],
                ["ticks / MAC", round(s["ticks_mean"] / s["macs"], 2) if s["macs"] else "-"],
                [f"time (ticks at {s['tick_hz'] / 1e6:g} MHz){mean}", f"{s['estimated_latency_ms']:.3f} ms"]], \
            f"summary ({s['measured_on']}: no instruction counts)"
    rows = [["instructions / inference" + mean, s["instructions_mean"]],
            ["instructions / MAC", round(s["instructions_per_mac"], 2) if s["instructions_per_mac"] else "-"]]
    if s["cycles_mean"] is not None:
        return rows + [[f"estimated cycles / inference{mean} (no wait states)", s["cycles_mean"]],
                       ["estimated cycles / MAC", round(s["cycles_per_mac"], 2) if s["cycles_per_mac"] else "-"],
                       [f"estimated latency @ {mhz} (from estimated cycles)", latency]], \
            f"summary (emulator: instruction counts; cycles estimated: {s['cycle_model']})"
    cpi = f"CPI {s['cpi']:g}" + ("" if s["cpi_calibrated"] else ", uncalibrated")
    return rows + [[f"estimated latency @ {mhz} ({cpi})", latency]], \
        "summary (emulator: instruction counts, not cycles)"


def print_run(result, tflm=None) -> None:
    """The report of a device run (`DeviceRun`): per layer, firmware size, summary, model RAM, mismatches. It says
    what was measured: instructions (QEMU -icount), cycles (DWT on silicon) or SysTick ticks (Renode)."""
    s = result.summary()
    header, rows = _layer_table(result, s)
    print(format_table(header, rows, title=f"per layer (sample 0) on {s['board']}, {s['layer_counts']}"))
    print()
    print_sizes(result.firmware, result.board)
    print_stack(result.firmware)
    print()
    counts, title = _count_rows(result, s)
    print(format_table(["figure", "value"], [
        ["kernel path", s["kernels"]],
        [f"bit-exact vs {s['reference']}", f"{'yes' if s['bit_exact'] else 'NO'} ({s['samples']} samples)"],
        *([["early exits taken (rate)", f"{s['exit_rate']:.0%} at int8 threshold {s['exit_threshold']}"]]
          if s["exits"] else []),
        *counts,
        ["arena (static, exact)", s["arena_bytes"]],
        ["stack high-water (measured)", s["stack_bytes"]],
        ["stack bound (static, worst case)", "unknown" if s["stack_bound_bytes"] is None else s["stack_bound_bytes"]],
        ["stack reserved", s["stack_reserved_bytes"]],
        ["flash total", s["flash_bytes"]],
    ], title=title))
    print()
    print(format_table(["model RAM", "bytes"], ram_rows(result.plan, s["stack_bound_bytes"], tflm)))
    print_mismatches(result)


DEFAULT_SAMPLES = 4  # random inputs embedded when no --inputs are given


def add_device_arguments(p, out_root: str, timeout_help: str) -> None:
    """What `run` and `flash` share: the weights' place, the inputs, the work directory, JSON, the timeout."""
    p.add_argument("--weights-in", choices=WEIGHTS_IN, default="flash",
                   help="where the weights live: flash (default, read in place) or ram (copied at start-up)")
    p.add_argument("--inputs", type=Path, help=".npy of shape [N, *input]; float is quantized (default random)")
    p.add_argument("--samples", type=positive_int,
                   help="samples to embed and run (default: every sample of --inputs, else 4 random ones)")
    p.add_argument("--out", type=Path, help=f"work directory (default {out_root}/<model>-<board>)")
    p.add_argument("--json", type=Path, help="write the results (outputs included) as JSON")
    p.add_argument("--timeout", type=positive_float, default=300.0, help=timeout_help)


@command("run")
class Run(Command):
    help = "compile, build and run a .tflite in the emulator: bit-exact check, instructions, memory"

    def add_arguments(self, p):
        p.add_argument("model", type=Path, help="fully int8 .tflite")
        p.add_argument("--board", default="mps2-an386", help="emulated board (default mps2-an386)")
        p.add_argument("--emulator", choices=EMULATORS, default="qemu",
                       help="qemu (default: instruction counts under -icount) or renode (a board with a [renode] "
                            "table: netduinoplus2, disco-f746ng, nrf52840-dk; Renode installed from renode.io; "
                            "SysTick ticks and virtual time only, not cycle-exact; the .resc is written beside the "
                            "ELF)")
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
        add_device_arguments(p, "build/run", "emulator timeout in seconds (default 300)")
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
        api.check_emulator(board, args.emulator, args.exact)
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
                            arena_region=args.arena_region, weights_in=args.weights_in, emulator=args.emulator,
                            progress=lambda msg: print(f"... {msg}", flush=True))
        print_run(result, api.tflm_arena(args.model)[0])
        if result.tensors is not None:
            print(f"\nlayer by layer (--dump-tensors; the counts above include the dump): "
                  f"{result.tensors.summary()}")
        if args.json:
            write_json(args.json, result.to_json())
            print(f"\nwrote {args.json}")
        return 0 if result.bit_exact else 1
