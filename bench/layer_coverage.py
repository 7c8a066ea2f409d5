"""Operator coverage as a user meets it (issue 17): the common tf_keras layers, each a small model with Keras's
default unknown batch size, exported to full int8 and compiled.

    .venv/bin/python bench/layer_coverage.py [--run] [--out build/bench-layers]

Per layer (tests/op_models.py LAYERS): the TFLite ops the converter writes, whether we compile it and are
bit-exact with LiteRT BUILTIN_REF on the host (4 random inputs), the same with `--reference tflm` against the
tflite-micro interpreter (or why tflite-micro cannot run the file), and with --run on mps2-an386 in QEMU (the
board's default dsp path, 2 inputs). Writes OUT/report.md and OUT/layers.json and prints the table.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np  # noqa: E402

from toolchain.fsutil import write_atomic, write_json  # noqa: E402
from toolchain.pipeline.bench import describe_error  # noqa: E402
from toolchain.report.table import format_table, markdown_table  # noqa: E402

HEADERS = ["layer", "TFLite ops (after export)", "ours vs LiteRT", "ours vs tflite-micro", "on mps2-an386"]


def check(tflite: Path, out: Path, reference: str) -> str:
    from toolchain.compiler import compile_model
    from toolchain.verify.check import check_against_reference

    try:
        compile_model(tflite, out, reference=reference)
        report = check_against_reference(tflite, out, samples=4, seed=0)
    except Exception as exc:  # a refusal is a result here
        return describe_error(exc).splitlines()[0][:120]
    return "bit-exact" if report.ok else "DIFFERS: " + report.summary().splitlines()[0][:100]


def on_the_device(tflite: Path, out: Path) -> str:
    from toolchain.boards import get_board
    from toolchain.pipeline.api import deploy

    try:
        run = deploy(tflite, get_board("mps2-an386"), out, samples=2, progress=lambda _: None)
    except Exception as exc:
        return describe_error(exc).splitlines()[0][:120]
    return "bit-exact" if run.bit_exact else "DIFFERS"


def measure(name: str, out: Path, run: bool) -> dict:
    import op_models

    from toolchain.compiler.frontend import load_tflite
    from toolchain.export.tflite import convert_int8

    model, shape = op_models.layer_model(name)
    tflite = out / f"{name}.tflite"
    convert_int8(model, np.random.default_rng(1).uniform(-1, 1, (16, *shape)).astype(np.float32), tflite)
    ops = sorted({op.kind for op in load_tflite(tflite).ops})
    row = {"layer": name, "ops": ops, "litert": check(tflite, out / f"{name}-litert", "litert"),
           "tflm": check(tflite, out / f"{name}-tflm", "tflm")}
    row["device"] = on_the_device(tflite, out / f"{name}-an386") if run else "-"
    return row


def main() -> int:
    import op_models

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="store_true", help="also run every layer on mps2-an386 in QEMU")
    ap.add_argument("--out", type=Path, default=Path("build/bench-layers"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, name in enumerate(sorted(op_models.LAYERS), 1):
        rows.append(measure(name, args.out, args.run))
        print(f"[{i}/{len(op_models.LAYERS)}] {name}: {rows[-1]['litert']}", flush=True)
    table = [[r["layer"], ", ".join(r["ops"]), r["litert"], r["tflm"], r["device"]] for r in rows]
    ops = sorted({op for r in rows for op in r["ops"]})
    summary = (f"{sum(r['litert'] == 'bit-exact' for r in rows)} of {len(rows)} layers compile bit-exact with "
               f"LiteRT ({len(ops)} distinct TFLite ops written by the converter); "
               f"{sum(r['tflm'] == 'bit-exact' for r in rows)} bit-exact with tflite-micro"
               + (f"; {sum(r['device'] == 'bit-exact' for r in rows)} bit-exact on mps2-an386" if args.run else ""))
    print(format_table(HEADERS, table) + "\n\n" + summary)
    write_json(args.out / "layers.json", rows)
    write_atomic(args.out / "report.md", markdown_table(HEADERS, table) + "\n\n" + summary + ".\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
