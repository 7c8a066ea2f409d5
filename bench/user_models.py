"""Models users bring (issue 17), per kernel path in QEMU: a MobileNetV3-Small-like CNN and a GRU keyword model.

    .venv/bin/python bench/user_models.py [--boards mps2-an386,mps3-an547] [--kernels ref,dsp,mve,cmsis-nn]
        [--out build/bench-user-models] [--jobs 1]

The two models of tests/op_models.py (MobileNetV3-Small's structure at width 0.35 and 96x96: hard-swish,
squeeze-and-excitation, inverted residuals; a GRU of 24 units unrolled over 49 MFCC frames of 10), random seeded
weights with BatchNorm statistics from random inputs, Keras's default unknown batch, full-int8 PTQ. Each
(model, board, path) is compiled, built, run on one sample and checked bit-exact as in bench/kernel_paths.py
(cmsis-nn only with CMSIS_NN_ROOT; layers CMSIS-NN has no kernel for run our portable ones there).

Writes OUT/report.md (the whole-model table and the per-layer-kind table) and OUT/user_models.json.
"""
from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from kernel_paths import (  # noqa: E402
    LAYER_HEADERS, MATRIX_HEADERS, MEMORY_HEADERS, layer_type_rows, matrix_rows, measure, memory_rows, paths_for,
)

from toolchain.fsutil import write_atomic, write_json  # noqa: E402
from toolchain.report.table import format_table, markdown_table  # noqa: E402

MODELS = {"mobilenet_v3_small": "mobilenet_v3_small_like", "gru_kws": "gru_keywords"}


def make_tflite(name: str, out: Path) -> Path:
    import op_models

    from toolchain import zoo
    from toolchain.export.tflite import convert_int8

    model = getattr(op_models, MODELS[name])()
    rep = np.random.default_rng(0).uniform(-1, 1, (32, *model.input_shape[1:])).astype(np.float32)
    zoo.calibrate_batchnorm(model, rep)
    path = out / f"{name}.tflite"
    convert_int8(model, rep, path)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--boards", default="mps2-an386,mps3-an547")
    ap.add_argument("--kernels", default="ref,dsp,mve,cmsis-nn")
    ap.add_argument("--out", type=Path, default=Path("build/bench-user-models"))
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tflites = [make_tflite(m, args.out) for m in args.models.split(",")]
    jobs = [(t, b, k) for t in tflites for b in args.boards.split(",") for k in paths_for(b, args.kernels.split(","))]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(measure, t, b, k, args.out) for t, b, k in jobs]
        rows = []
        for i, f in enumerate(futures, 1):
            rows.append(f.result())
            r = rows[-1]
            print(f"[{i}/{len(jobs)}] {r['model']} {r['board']} {r['kernels']}: "
                  + (f"FAILED {r['error']}" if r.get("error") else
                     f"{r['instr_per_mac']:.3f} instr/MAC, bit-exact {r['bit_exact']}"), flush=True)
    tables = [(MATRIX_HEADERS, matrix_rows(rows)), (MEMORY_HEADERS, memory_rows(rows)),
              (LAYER_HEADERS, layer_type_rows(rows))]
    for headers, table in tables:
        print(format_table(headers, table) + "\n")
    write_json(args.out / "user_models.json", rows)
    write_atomic(args.out / "report.md", "\n\n".join(markdown_table(h, t) for h, t in tables) + "\n")
    return 0 if all(not r.get("error") and r["bit_exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
