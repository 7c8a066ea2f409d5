"""tinyml run MODEL.tflite --board B: compile, build, run in the emulator, check bit-exactness, measure."""
from __future__ import annotations

from pathlib import Path

from toolchain.boards import get_board
from toolchain.cli.base import Command, command
from toolchain.cli.build import print_sizes
from toolchain.fsutil import write_json
from toolchain.report.table import format_table


def print_run(result) -> None:
    s = result.summary()
    layers = result.layer_instructions(0)
    rows = [[i, op, macs, round(ins) if ins is not None else None, ins / macs if ins and macs else None]
            for i, ((op, macs), ins) in enumerate(zip(result.run.layers, layers))]
    print(format_table(["#", "op", "MACs", "instructions", "instr/MAC"], rows,
                       title=f"per layer (sample 0) on {s['board']}, {s['layer_counts']}"))
    print()
    print_sizes(result.firmware, result.board)
    print()
    cpi = f"CPI {s['cpi']:g}" + ("" if s["cpi_calibrated"] else ", uncalibrated")
    print(format_table(["figure", "value"], [
        ["bit-exact vs LiteRT BUILTIN_REF", f"{'yes' if s['bit_exact'] else 'NO'} ({s['samples']} samples)"],
        *([["early exits taken (rate)", f"{s['exit_rate']:.0%} at int8 threshold {s['exit_threshold']}"]]
          if s["exits"] else []),
        ["instructions / inference" + (" (mean)" if s["exits"] else ""), s["instructions_mean"]],
        ["instructions / MAC", round(s["instructions_per_mac"], 2) if s["instructions_per_mac"] else "-"],
        [f"estimated latency @ {s['clock_hz'] / 1e6:g} MHz ({cpi})", f"{s['estimated_latency_ms']:.2f} ms"],
        ["arena (static, exact)", s["arena_bytes"]],
        ["stack high-water", s["stack_bytes"]],
        ["flash total", s["flash_bytes"]],
    ], title="summary (emulator: instruction counts, not cycles)"))
    if not result.exits_agree:
        print(f"  exit mismatch: device {result.exits} vs host {result.expected_exits}")
    for m in result.mismatches[:5]:
        print(f"  mismatch: sample {m.sample} output '{m.output}' {m.count}/{m.size} differ at {m.positions}")


@command("run")
class Run(Command):
    help = "compile, build and run a .tflite in the emulator: bit-exact check, instructions, memory"

    def add_arguments(self, p):
        p.add_argument("model", type=Path, help="fully int8 .tflite")
        p.add_argument("--board", default="mps2-an386", help="emulated board (default mps2-an386)")
        p.add_argument("--inputs", type=Path, help=".npy of shape [N, *input]; float is quantized (default random)")
        p.add_argument("--samples", type=int, default=4, help="samples to embed and run (default 4)")
        p.add_argument("--out", type=Path, help="work directory (default build/run/<model>-<board>)")
        p.add_argument("--json", type=Path, help="write the results (outputs included) as JSON")
        p.add_argument("--timeout", type=float, default=300.0, help="emulator timeout in seconds (default 300)")
        p.add_argument("--early-exit", action="store_true",
                       help="treat the outputs other than the final one as early exits (int8 softmax)")
        p.add_argument("--threshold", type=float, default=1.0,
                       help="leave at an exit when its top probability >= this (default 1.0: never)")
        p.add_argument("--exact", action="store_true",
                       help="count every instruction per layer with a QEMU TCG plugin (exact, slightly slower)")

    def run(self, args):
        from toolchain.compiler.exits import threshold_to_int8
        from toolchain.deploy import deploy, load_inputs

        board = get_board(args.board)
        out = args.out or Path("build/run") / f"{args.model.stem}-{board.name}"
        inputs = None
        if args.inputs:
            from toolchain.compiler.frontend import load_tflite
            from toolchain.compiler.codegen import describe_io

            g = load_tflite(args.model)
            inputs = load_inputs(args.inputs, describe_io(g, g.inputs[0], g.input_names[0]), args.samples)
        result = deploy(args.model, board, out, inputs=inputs, samples=args.samples, timeout=args.timeout,
                        exact=args.exact, early_exit=args.early_exit, exit_threshold=threshold_to_int8(args.threshold),
                        progress=lambda msg: print(f"... {msg}", flush=True))
        print_run(result)
        if args.json:
            write_json(args.json, result.to_json())
            print(f"\nwrote {args.json}")
        return 0 if result.bit_exact else 1
