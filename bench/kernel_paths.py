"""Kernel paths side by side: the MLPerf Tiny architectures x Cortex-M cores x kernel paths, in QEMU.

    .venv/bin/python bench/kernel_paths.py [--models kws,vww,ic,ad]
        [--boards mps2-an386,mps2-an500,mps2-an505,mps3-an547] [--kernels ref,dsp,mve,cmsis-nn]
        [--out build/bench-kernels] [--jobs 2]

Every (model, board, path) the board's core can run is compiled, built, run on one random sample and checked
bit-exact (cmsis-nn against tflite-micro's rounding, the others against LiteRT BUILTIN_REF), with exact per-layer
instruction counts (TCG plugin). `cmsis-nn` runs only when CMSIS_NN_ROOT points at a CMSIS-NN checkout.
Random weights (seeded, BatchNorm-calibrated) and full-int8 PTQ: the figures depend on the architecture.

Writes OUT/report.md (the whole-model matrix, the per-layer-type table and the arena and stack of every run, as
in docs/BENCHMARKS.md),
OUT/kernel_paths.json and OUT/kernel_paths.png, and prints the tables.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware_matrix import make_tflite  # noqa: E402

from toolchain.boards import get_board  # noqa: E402
from toolchain.fsutil import write_atomic, write_json  # noqa: E402
from toolchain.pipeline.bench import describe_error  # noqa: E402
from toolchain.report.plots import figure, save_png  # noqa: E402
from toolchain.report.table import format_table, markdown_table  # noqa: E402

DEFAULT_BOARDS = "mps2-an386,mps2-an500,mps2-an505,mps3-an547"
CALL = re.compile(r"TM_CHECK\((?:\(\w+\))?(\w+)\(")  # (tm_status) casts a CMSIS-NN status


def layer_kernels(model_c: Path) -> list[str]:
    """The C function each layer calls, in layer order (a layer run in row bands calls it once per band run)."""
    layers = re.split(r"TM_LAYER\(\d+\);", model_c.read_text().split("int32_t tm_model_run(", 1)[1])[1:]
    return [next(iter(CALL.findall(body)), "") for body in layers]


def layer_kind(info) -> str:
    """The operator, and for convolutions the filter class the kernels specialise on."""
    if info.op in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(info.inputs) > 1 and len(info.inputs[1]) == 4:
        _, kh, kw, cin = info.inputs[1]
        if info.op == "CONV_2D" and kh == kw == 1:
            return "CONV_2D 1x1"
        if info.op == "CONV_2D" and cin <= 3:
            return f"CONV_2D {kh}x{kw}, {cin} input channel(s)"
        return f"{info.op} {kh}x{kw}"
    return info.op


def measure(model: Path, board: str, kernels: str, out: Path) -> dict:
    """One run, as a row with its per-layer view; a failure is a row with `error`."""
    from toolchain.pipeline.api import deploy

    row = {"model": model.stem, "board": board, "cpu": get_board(board).cpu, "kernels": kernels}
    work = out / f"{model.stem}-{board}-{kernels}"
    try:
        result = deploy(model, get_board(board), work, samples=1, exact=True, kernels=kernels,
                        reference="tflm" if kernels == "cmsis-nn" else "litert", progress=lambda _: None)
    except Exception as exc:  # one failing combination must not cost the rest
        return {**row, "error": describe_error(exc)}
    s = result.summary()
    flash = s["flash_by_part"]
    code = sum(n for part, n in flash.items() if part not in ("model weights", "test set"))
    calls = layer_kernels(work / "c" / "model.c")
    layers = [{"kind": layer_kind(info), "kernel": call, "macs": info.macs, "instructions": ins}
              for info, call, ins in zip(result.plan.layers, calls, result.layer_instructions(0))]
    for info in result.plan.layers:  # a patch stage's instructions are all its first layer's: one kind of its own
        if info.stage_end is not None:
            stage = layers[info.index:info.stage_end + 1]
            layers[info.index] = {"kind": "patch stage", "kernel": stage[0]["kernel"],
                                  "macs": sum(x["macs"] for x in stage), "instructions": stage[0]["instructions"]}
            for j in range(info.index + 1, info.stage_end + 1):
                layers[j] = {**layers[j], "kind": "patch stage (inner layer)", "macs": 0, "instructions": None}
    return {**row, "bit_exact": s["bit_exact"], "reference": s["reference"], "macs": s["macs"],
            "instructions": s["instructions_mean"], "instr_per_mac": s["instructions_mean"] / s["macs"],
            "est_cycles": s.get("cycles_mean"), "flash_code": code, "weights": flash.get("model weights", 0),
            "kernels_flash": flash.get("kernels", 0), "arena": s["arena_bytes"], "stack": s["stack_bytes"],
            "stack_bound": s["stack_bound_bytes"], "stack_reserved": s["stack_reserved_bytes"],
            "layers": layers, "error": None}


def paths_for(board: str, wanted: list[str]) -> list[str]:
    have = get_board(board).kernel_paths
    return [k for k in wanted if k in have and (k != "cmsis-nn" or os.environ.get("CMSIS_NN_ROOT"))]


def ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def matrix_rows(rows: list[dict]) -> list[list]:
    by_key = {(r["model"], r["board"], r["kernels"]): r for r in rows if not r.get("error")}
    table = []
    for r in rows:
        if r.get("error"):
            table.append([r["model"], r["board"], r["kernels"], f"FAILED: {r['error']}"] + [""] * 7)
            continue
        ref = by_key.get((r["model"], r["board"], "ref"))
        cmsis = by_key.get((r["model"], r["board"], "cmsis-nn"))
        cyc = r["est_cycles"]
        table.append([r["model"], f"{r['board']} ({r['cpu'].removeprefix('cortex-')})", r["kernels"],
                      "yes" if r["bit_exact"] else "NO", r["instructions"], f"{r['instr_per_mac']:.3f}",
                      f"{cyc / r['macs']:.3f}" if cyc else "-",
                      ratio(ref["instructions"], r["instructions"]) if ref else "-",
                      ratio(cmsis["instructions"], r["instructions"]) if cmsis and r is not cmsis else "-",
                      r["flash_code"], r["weights"]])
    return table


MATRIX_HEADERS = ["model", "board (core)", "kernels", "bit-exact", "instructions", "instr/MAC",
                  "est. cycles/MAC", "fewer instr. than ref", "fewer instr. than cmsis-nn", "flash code B",
                  "weights B"]


def layer_type_rows(rows: list[dict]) -> list[list]:
    """Per board, path and layer kind: MACs, instructions and instr/MAC summed over the models."""
    acc: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        if r.get("error"):
            continue
        for layer in r["layers"]:
            if layer["instructions"] is None:
                continue
            a = acc[(r["board"], r["kernels"], layer["kind"])]
            a[0] += 1
            a[1] += layer["macs"]
            a[2] += layer["instructions"]
    out = []
    for (board, kernels, kind), (n, macs, ins) in sorted(acc.items()):
        out.append([board, kernels, kind, n, macs, ins, f"{ins / macs:.3f}" if macs else "-"])
    return out


LAYER_HEADERS = ["board", "kernels", "layer kind", "layers", "MACs", "instructions", "instr/MAC"]


def memory_rows(rows: list[dict]) -> list[list]:
    """Per run: the arena and the stack measured, bounded and reserved (the reserve is the bound + margin)."""
    return [[r["model"], r["board"], r["kernels"], r["arena"], r["stack"], r["stack_bound"] or "unknown",
             r["stack_reserved"], ratio(r["stack_reserved"], r["stack"])] for r in rows if not r.get("error")]


MEMORY_HEADERS = ["model", "board", "kernels", "arena B", "stack high-water B", "static stack bound B",
                  "stack reserved B", "reserved / high-water"]


def plot(rows: list[dict], path: Path) -> Path:
    ok = [r for r in rows if not r.get("error")]
    combos = sorted({(r["board"], r["kernels"]) for r in ok})
    models = sorted({r["model"] for r in ok})
    fig, ax = figure((max(6.4, 0.9 * len(combos) + 2), 4.4))
    width = 0.8 / max(len(models), 1)
    for i, m in enumerate(models):
        values = [next((r["instr_per_mac"] for r in ok if (r["board"], r["kernels"], r["model"]) == (b, k, m)), 0)
                  for b, k in combos]
        ax.bar([x + i * width for x in range(len(combos))], values, width, label=m)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(combos))])
    ax.set_xticklabels([f"{b}\n{k}" for b, k in combos], fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("instructions / MAC (log)")
    ax.set_title("MLPerf Tiny architectures: instructions per MAC by kernel path (QEMU)")
    ax.legend(fontsize=8)
    return save_png(fig, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="kws,vww,ic,ad")
    ap.add_argument("--boards", default=DEFAULT_BOARDS)
    ap.add_argument("--kernels", default="ref,dsp,mve,cmsis-nn")
    ap.add_argument("--out", type=Path, default=Path("build/bench-kernels"))
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if "cmsis-nn" in args.kernels.split(",") and not os.environ.get("CMSIS_NN_ROOT"):
        print("note: CMSIS_NN_ROOT is not set: the cmsis-nn column is left out "
              "(point it at a CMSIS-NN checkout to compare)", flush=True)
    tflites = [make_tflite(m, args.out) for m in args.models.split(",")]
    todo = [(t, b, k) for t in tflites for b in args.boards.split(",") for k in paths_for(b, args.kernels.split(","))]
    rows = []
    with ProcessPoolExecutor(max(1, args.jobs)) as pool:
        futures = [pool.submit(measure, t, b, k, args.out) for t, b, k in todo]
        for n, future in enumerate(futures, 1):
            rows.append(future.result())
            r = rows[-1]
            status = r["error"] or f"{r['instr_per_mac']:.3f} instr/MAC, bit-exact {r['bit_exact']}"
            print(f"[{n}/{len(todo)}] {r['model']} {r['board']} {r['kernels']}: {status}", flush=True)
    matrix, layers, memory = matrix_rows(rows), layer_type_rows(rows), memory_rows(rows)
    print(format_table(MATRIX_HEADERS, matrix, title="whole model"))
    print()
    print(format_table(LAYER_HEADERS, layers, title="by layer kind (all models)"))
    print()
    print(format_table(MEMORY_HEADERS, memory, title="arena and stack"))
    report = ("# Kernel paths\n\n" + markdown_table(MATRIX_HEADERS, matrix) + "\n\n## By layer kind\n\n"
              + markdown_table(LAYER_HEADERS, layers) + "\n\n## Arena and stack\n\n"
              + markdown_table(MEMORY_HEADERS, memory) + "\n")
    write_atomic(args.out / "report.md", report)
    write_json(args.out / "kernel_paths.json", rows)
    plot(rows, args.out / "kernel_paths.png")
    print(f"\nwrote {args.out / 'report.md'}, kernel_paths.json, kernel_paths.png")
    return 0 if all(r.get("bit_exact") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
