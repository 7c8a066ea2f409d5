"""tinyml bench: models x boards x kernel paths in the emulator, one table, CSV/JSON out."""
from __future__ import annotations

import sys
from pathlib import Path

from toolchain.cli.base import Command, check_output_dir, check_output_file, command, positive_int
from toolchain.fsutil import write_atomic, write_json
from toolchain.report.table import format_table


@command("bench")
class Bench(Command):
    help = "benchmark .tflite models or recipes on several emulated boards and kernel paths in parallel"

    def add_arguments(self, p):
        p.add_argument("models", nargs="+", type=Path,
                       help=".tflite files, or recipes (models/<name>.toml: trained and exported first, cached)")
        p.add_argument("--boards", default="mps2-an386", help="comma-separated boards (default mps2-an386)")
        p.add_argument("--kernels", default="board",
                       help="comma-separated kernel paths: ref, dsp, mve, cmsis-nn, or board (each board's default, "
                            "the default); a path a board's core lacks is skipped. cmsis-nn: Arm's CMSIS-NN from "
                            "CMSIS_NN_ROOT (compared with tflite-micro), and a vs_cmsis_nn column for the other rows")
        p.add_argument("--jobs", type=positive_int, default=2, help="parallel processes (default 2)")
        p.add_argument("--samples", type=positive_int, default=1, help="samples per run (default 1)")
        p.add_argument("--out", type=Path, default=Path("build/bench"), help="work directory")
        p.add_argument("--csv", type=Path, help="write the table as CSV")
        p.add_argument("--json", type=Path, help="write the table as JSON")

    def run(self, args):
        from toolchain.pipeline.bench import COLUMNS, board_paths, failures, run_matrix, to_csv

        check_output_dir(args.out, "--out")
        check_output_file(args.csv, "--csv")
        check_output_file(args.json, "--json")

        boards, kernels = args.boards.split(","), args.kernels.split(",")
        rows = run_matrix(args.models, boards, kernels, args.out, args.jobs, args.samples)
        print(format_table(COLUMNS, [[r.get(c) if not isinstance(r.get(c), bool) else ("yes" if r[c] else "NO")
                                      for c in COLUMNS] for r in rows]))
        for board, path in board_paths(boards, kernels)[1]:
            print(f"skipped: {path} on {board} (its core cannot run the {path} kernels)")
        if any(r.get("vs_cmsis_nn") is not None for r in rows):
            print("vs_cmsis_nn: instructions / CMSIS-NN's on the same model and board (below 1: fewer than CMSIS-NN)")
        if args.csv:
            write_atomic(args.csv, to_csv(rows))
        if args.json:
            write_json(args.json, rows)
        for r in failures(rows):
            print(f"error: {r['model']} on {r['board']} ({r['kernels']}): {r['error']}", file=sys.stderr)
        return 0 if all(r["bit_exact"] for r in rows) else 1  # a failed row has no bit_exact
