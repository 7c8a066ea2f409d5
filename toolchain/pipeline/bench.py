"""Benchmark matrices: models x boards x kernel paths, each run in the emulator, in parallel processes."""
from __future__ import annotations

import csv
import io
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from toolchain.boards import get_board
from toolchain.compiler import cmsis_nn
from toolchain.compiler.targets import KERNEL_PATHS
from toolchain.errors import ToolchainError
from toolchain.report.table import markdown_table

# vs_cmsis_nn: the row's instructions / the cmsis-nn row's for the same model and board (when both were run).
COLUMNS = ["model", "board", "kernels", "bit_exact", "macs", "instructions", "instr_per_mac", "vs_cmsis_nn", "est_ms",
           "clock_mhz", "arena", "stack", "flash", "weights", "error", "est_cycles", "cycles_per_mac"]
# est_cycles: estimated cycles (no wait states) from the TCG plugin's instruction classes (docs/CYCLES.md), on cores
# with a cycle table; est_ms is then est_cycles / clock, else instructions x the board's CPI.


@dataclass(frozen=True)
class Job:
    model: Path
    board: str
    kernels: str
    out: Path
    samples: int


def describe_error(exc: BaseException) -> str:
    """One line for the CSV's error column."""
    text = str(exc) if isinstance(exc, ToolchainError) else "".join(traceback.format_exception_only(exc)).strip()
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def failed_row(model: Path, board: str, kernels: str, exc: BaseException) -> dict:
    return {**dict.fromkeys(COLUMNS), "model": Path(model).stem, "board": board, "kernels": kernels,
            "error": describe_error(exc)}


def measure_or_fail(job: Job) -> dict:
    """A row either way: one bad model must not cost the rest of the matrix (runs in a worker process)."""
    try:
        return measure(job)
    except Exception as exc:
        return failed_row(job.model, job.board, job.kernels, exc)


def measure(job: Job) -> dict:
    from toolchain.pipeline.api import deploy

    board = get_board(job.board)
    # deploy's reference follows the path: tflite-micro's rounding for cmsis-nn, LiteRT's otherwise
    result = deploy(job.model, board, job.out / f"{job.model.stem}-{job.board}-{job.kernels}", samples=job.samples,
                    kernels=job.kernels, exact=True, progress=lambda _: None)
    s = result.summary()
    return {"model": job.model.stem, "board": job.board, "kernels": job.kernels, "bit_exact": s["bit_exact"],
            "macs": s["macs"], "instructions": s["instructions_mean"],
            "instr_per_mac": round(s["instructions_per_mac"], 3) if s["instructions_per_mac"] else None,
            "vs_cmsis_nn": None,
            "est_ms": round(s["estimated_latency_ms"], 2), "clock_mhz": board.clock_hz / 1e6,
            "arena": s["arena_bytes"], "stack": s["stack_bytes"], "flash": s["flash_bytes"],
            "weights": s["flash_by_part"].get("model weights", 0), "error": None,
            "est_cycles": s["cycles_mean"],
            "cycles_per_mac": round(s["cycles_per_mac"], 3) if s["cycles_per_mac"] else None}


def model_file(path: Path, out: Path) -> Path:
    """A .tflite as is; a recipe (.toml) trained, compressed and exported through the cached pipeline
    stages in out/<recipe> (a second bench of the same recipe reuses them)."""
    path = Path(path)
    if path.suffix != ".toml":
        return path
    from toolchain.pipeline.run import PipelineRun
    from toolchain.recipe import load_recipe

    recipe = load_recipe(path)
    run = PipelineRun(recipe, Path(out) / recipe.name)
    with run.pipe.interruptible():
        exported = run.export(run.compress(run.train()))
    named = Path(out) / f"{recipe.name}.tflite"
    named.write_bytes((exported.dir / "model.tflite").read_bytes())
    return named


BOARD_DEFAULT = "board"  # in --kernels: each board's own default path (board.toml `kernels`)


def board_paths(boards: list[str], kernels: list[str]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The (board, kernel path) pairs to run, and those skipped because the board's core lacks the path's
    extension (e.g. mve on a Cortex-M4). `board` in `kernels` stands for each board's default path."""
    run, skipped = [], []
    for b in boards:
        board = get_board(b)
        for k in dict.fromkeys(board.kernels if k == BOARD_DEFAULT else k for k in kernels):
            (run if k in board.kernel_paths else skipped).append((b, k))
    return run, skipped


def run_matrix(models: list[Path], boards: list[str], kernels: list[str], out: Path, jobs: int = 2,
               samples: int = 1) -> list[dict]:
    """Every (model, board, kernel path) measured in the emulator; models are .tflite files or recipes. A path the
    board's core cannot run is left out (`board_paths`). A combination that fails gives a row with its `error`
    (and no measurements) instead of stopping the rest."""
    for k in kernels:
        if k not in KERNEL_PATHS and k != BOARD_DEFAULT:
            raise ToolchainError(f"unknown kernel path {k!r}",
                                 f"available: {', '.join(KERNEL_PATHS)}, or {BOARD_DEFAULT} (each board's default)")
    if cmsis_nn.TARGET in kernels:  # before anything runs: one error, not a failed row per model and board
        cmsis_nn.find_checkout()
    for b in boards:
        if not get_board(b).emulated:
            raise ToolchainError(f"board {b} has no emulator; bench runs emulated boards")
    for m in models:
        if not Path(m).is_file():
            raise ToolchainError(f"model not found: {m}")
    pairs, _ = board_paths(boards, kernels)
    rows: list[dict | None] = []
    todo = []
    for m in models:
        try:
            path = model_file(m, out)
        except Exception as exc:  # a recipe that fails to train or export: its rows fail, the others run
            rows += [failed_row(m, b, k, exc) for b, k in pairs]
            continue
        for b, k in pairs:
            todo.append((len(rows), Job(Path(path), b, k, Path(out), samples)))
            rows.append(None)
    with ProcessPoolExecutor(max(1, jobs)) as pool:
        futures = [(i, job, pool.submit(measure_or_fail, job)) for i, job in todo]
        for i, job, future in futures:
            try:
                rows[i] = future.result()
            except Exception as exc:  # the worker died (e.g. killed): BrokenProcessPool
                rows[i] = failed_row(job.model, job.board, job.kernels, exc)
    return compare_with_cmsis_nn(rows)


def compare_with_cmsis_nn(rows: list[dict]) -> list[dict]:
    """Each measured row's `vs_cmsis_nn`: its instructions / those of the cmsis-nn row of the same model and board
    (below 1: fewer than CMSIS-NN); None where there is no such row (and on the cmsis-nn row itself)."""
    cmsis = {(r["model"], r["board"]): r["instructions"] for r in rows
             if r["kernels"] == cmsis_nn.TARGET and r.get("instructions")}
    out = []
    for r in rows:
        base = cmsis.get((r["model"], r["board"]))
        ratio = (round(r["instructions"] / base, 3) if base and r.get("instructions")
                 and r["kernels"] != cmsis_nn.TARGET else None)
        out.append({**r, "vs_cmsis_nn": ratio})
    return out


def failures(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("error")]


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def to_markdown(rows: list[dict]) -> str:
    headers = ["model", "board", "kernels", "bit-exact", "MACs", "instructions", "instr/MAC", "vs CMSIS-NN",
               "est. cycles", "cycles/MAC", "est. ms @ clock", "arena B", "stack B", "flash B (weights)"]
    cells = []
    for r in rows:
        if r.get("error"):
            cells.append([r["model"], r["board"], r["kernels"], f"FAILED: {r['error']}"] + [""] * (len(headers) - 4))
            continue
        cells.append([r["model"], r["board"], r["kernels"], "yes" if r["bit_exact"] else "NO", r["macs"],
                      r["instructions"], f"{r['instr_per_mac']:.2f}",
                      "" if r.get("vs_cmsis_nn") is None else f"{r['vs_cmsis_nn']:.2f}x",
                      "" if r.get("est_cycles") is None else r["est_cycles"],
                      "" if r.get("cycles_per_mac") is None else f"{r['cycles_per_mac']:.2f}",
                      f"{r['est_ms']:.1f} @ {r['clock_mhz']:g} MHz",
                      r["arena"], r["stack"], f"{r['flash']:,} ({r['weights']:,})"])
    return markdown_table(headers, cells)
