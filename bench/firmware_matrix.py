"""Instructions/MAC, arena, stack and flash of the MLPerf Tiny architectures on every QEMU board.

    .venv/bin/python bench/firmware_matrix.py [--models kws,vww,ic,ad] [--boards ...] [--out build/bench]

Random weights (seeded, BatchNorm-calibrated) and full-int8 PTQ: the figures depend on the
architecture, not on training. Prints a Markdown table (the one in docs/BENCHMARKS.md).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toolchain import zoo  # noqa: E402
from toolchain.pipeline.bench import run_matrix, to_markdown  # noqa: E402
from toolchain.boards import all_boards  # noqa: E402


def make_tflite(name: str, out: Path) -> Path:
    from toolchain.export.tflite import convert_int8
    from toolchain.tf import import_tf

    _, keras = import_tf()
    entry = zoo.get(name)
    keras.utils.set_random_seed(0)
    model = entry.build()
    rep = np.random.default_rng(0).uniform(-1, 1, (32, *entry.input_shape)).astype(np.float32)
    zoo.calibrate_batchnorm(model, rep)
    path = out / f"{name}.tflite"
    convert_int8(model, rep, path)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="kws,vww,ic,ad")
    ap.add_argument("--boards", default=",".join(b for b, v in all_boards().items() if v.emulated))
    ap.add_argument("--out", type=Path, default=Path("build/bench"))
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tflites = [make_tflite(m, args.out) for m in args.models.split(",")]
    rows = run_matrix(tflites, args.boards.split(","), ["ref"], args.out, args.jobs)
    print(to_markdown(rows))
    return 0 if all(r["bit_exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
