"""Model RAM of the MLPerf Tiny architectures, ours next to TFLM's, per kernel path; what row bands cost.

    .venv/bin/python bench/memory.py [--models kws,vww,ic,ad] [--kernels ref,dsp,mve] [--run]
        [--out build/bench-memory] [--jobs 2]

Per (model, kernel path): the compiled arena (every tensor, the inputs and outputs included, the layers' scratch,
overlaps and row bands chosen by the compiler), its lower bound, and TFLM's arena for the same .tflite from its
recording allocator (head: its planner's figure for the same tensors; total: what a TFLM user allocates).
With --run, each is also built and run in QEMU (ref and dsp on mps2-an386, mve on mps3-an547), with the row bands
and without (`bands="none"`), both checked bit-exact: the measured stack high-water mark, and the instructions
the bands' extra calls and copies cost.

Writes OUT/report.md, OUT/memory.json and OUT/memory.png, and prints the tables.
"""
from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware_matrix import make_tflite  # noqa: E402

from toolchain.fsutil import write_atomic, write_json  # noqa: E402
from toolchain.pipeline.bench import describe_error  # noqa: E402
from toolchain.report.plots import figure, save_png  # noqa: E402
from toolchain.report.table import format_table, markdown_table  # noqa: E402

RUN_BOARD = {"ref": "mps2-an386", "dsp": "mps2-an386", "mve": "mps3-an547"}
GOALS = {"kws": 8_800, "vww": 29_500, "ic": 34_500, "ad": 768}  # issue 15: model RAM without the stack (VWW: with
# the patch-based first stage)


def compiled_row(tflite: Path, kernels: str, out: Path) -> dict:
    from toolchain.compiler import compile_model

    plan = compile_model(tflite, out / f"{tflite.stem}-{kernels}", target=kernels).plan
    parts = plan.ram_parts()
    return {"model": tflite.stem, "kernels": kernels, "arena": plan.arena_bytes, "lower_bound": plan.live_peak_bytes,
            "inputs": parts["inputs"], "scratch": parts["largest scratch"],
            "banded_layers": sum(1 for layer in plan.layers if layer.band_rows),
            "overlaps": len(plan.overlaps), "strategy": plan.plan_strategy}


def device_row(tflite: Path, kernels: str, out: Path) -> dict:
    """Bit-exact runs with and without row bands: the stack and the instructions the bands cost."""
    from toolchain.boards import get_board
    from toolchain.pipeline.api import deploy

    board = get_board(RUN_BOARD[kernels])
    row = {"model": tflite.stem, "kernels": kernels, "board": board.name}
    try:
        for bands in ("auto", "none"):
            run = deploy(tflite, board, out / f"{tflite.stem}-{kernels}-{bands}", samples=1, kernels=kernels,
                         bands=bands, progress=lambda _: None)
            s = run.summary()
            row[f"bit_exact_{bands}"] = run.bit_exact
            row[f"instructions_{bands}"] = s["instructions_mean"]
            row[f"arena_{bands}"] = s["arena_bytes"]
            row[f"stack_{bands}"] = s["stack_bytes"]
    except Exception as exc:  # noqa: BLE001 - one failed run is a row that says why, not a lost matrix
        row["error"] = describe_error(exc)
    return row


def compile_rows(rows: list[dict], tflm: dict) -> list[list]:
    out = []
    for r in rows:
        head, total = tflm.get(r["model"], (None, None))
        out.append([r["model"], r["kernels"], r["arena"], r["lower_bound"], r["inputs"], r["scratch"],
                    r["banded_layers"], r["overlaps"], head, f"{r['arena'] / head:.2f}x" if head else "-", total,
                    GOALS[r["model"]] if r["model"] in GOALS else "-",
                    "yes" if r["model"] in GOALS and r["arena"] <= GOALS[r["model"]] else "no"])
    return out


COMPILE_HEADERS = ["model", "kernels", "arena B", "lower bound B", "of which inputs", "largest scratch",
                   "banded layers", "overlaps", "TFLM head B", "ours / head", "TFLM total B", "goal B", "met"]


def device_rows(rows: list[dict]) -> list[list]:
    out = []
    for r in rows:
        if "error" in r:
            out.append([r["model"], r["kernels"], r["board"], r["error"]] + [""] * 5)
            continue
        auto, none = r["instructions_auto"], r["instructions_none"]
        out.append([r["model"], r["kernels"], r["board"],
                    "yes" if r["bit_exact_auto"] and r["bit_exact_none"] else "NO",
                    f"{r['arena_none']:,} -> {r['arena_auto']:,}", none, auto, f"{(auto - none) / none:+.2%}",
                    r["stack_auto"]])
    return out


DEVICE_HEADERS = ["model", "kernels", "board", "bit-exact", "arena B: no bands -> bands", "instructions, no bands",
                  "instructions, bands", "bands cost", "stack high-water B"]


def plot(rows: list[dict], tflm: dict, path: Path) -> Path:
    fig, ax = figure((8, 4))
    models = sorted({r["model"] for r in rows}, key=list(GOALS).index)
    kernels = sorted({r["kernels"] for r in rows}, key=["ref", "dsp", "mve"].index)
    width = 0.8 / (len(kernels) + 2)
    for k, name in enumerate(["TFLM total", "TFLM head", *kernels]):
        values = []
        for m in models:
            if name.startswith("TFLM"):
                values.append(tflm.get(m, (0, 0))[0 if name == "TFLM head" else 1] / 1024)
            else:
                values.append(next((r["arena"] for r in rows if r["model"] == m and r["kernels"] == name), 0) / 1024)
        ax.bar([i + k * width for i in range(len(models))], values, width, label=name)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(models))], models)
    ax.set_ylabel("KiB")
    ax.set_title("model RAM without stack: ours (arena, inputs and outputs included) vs TFLM")
    ax.legend()
    return save_png(fig, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="kws,vww,ic,ad")
    ap.add_argument("--kernels", default="ref,dsp,mve")
    ap.add_argument("--run", action="store_true", help="also build and run each in QEMU, with and without bands")
    ap.add_argument("--out", type=Path, default=Path("build/bench-memory"))
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    from toolchain.pipeline.api import tflm_arena

    args.out.mkdir(parents=True, exist_ok=True)
    models = [make_tflite(m, args.out) for m in args.models.split(",")]
    kernels = args.kernels.split(",")
    tflm = {}
    for m in models:
        arena, why = tflm_arena(m)
        tflm[m.stem] = (arena.head, arena.total) if arena else (None, None)
        print(f"TFLM {m.stem}: " + (f"head {arena.head:,} B, total {arena.total:,} B" if arena else why), flush=True)
    rows = [compiled_row(m, k, args.out / "c") for m in models for k in kernels]
    tables = [format_table(COMPILE_HEADERS, compile_rows(rows, tflm), title="compiled arena vs TFLM (bytes)")]
    markdown = [markdown_table(COMPILE_HEADERS, compile_rows(rows, tflm))]
    device = []
    if args.run:
        with ProcessPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(device_row, m, k, args.out / "run") for m in models for k in kernels]
            for f in futures:
                device.append(f.result())
                print(f"ran {device[-1]['model']} {device[-1]['kernels']}", flush=True)
        tables.append(format_table(DEVICE_HEADERS, device_rows(device), title="in QEMU, one sample"))
        markdown.append(markdown_table(DEVICE_HEADERS, device_rows(device)))
    for t in tables:
        print(t + "\n")
    png = plot(rows, tflm, args.out / "memory.png")
    write_json(args.out / "memory.json", {"compiled": rows, "tflm": tflm, "device": device})
    write_atomic(args.out / "report.md", "# Model RAM\n\n" + "\n\n".join(markdown) + f"\n\n![memory]({png.name})\n")
    print(f"wrote {args.out / 'report.md'}, {args.out / 'memory.json'}, {png}")
    return 0 if all("error" not in r and r["bit_exact_auto"] and r["bit_exact_none"] for r in device) else 1


if __name__ == "__main__":
    sys.exit(main())
