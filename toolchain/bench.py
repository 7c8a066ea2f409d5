"""Benchmark matrices: models x boards x kernel paths, each run in the emulator, in parallel processes."""
from __future__ import annotations

import csv
import io
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from toolchain.boards import get_board
from toolchain.compiler.driver import TARGETS
from toolchain.errors import ToolchainError

COLUMNS = ["model", "board", "kernels", "bit_exact", "macs", "instructions", "instr_per_mac", "est_ms", "clock_mhz",
           "arena", "stack", "flash", "weights"]


@dataclass(frozen=True)
class Job:
    model: Path
    board: str
    kernels: str
    out: Path
    samples: int


def measure(job: Job) -> dict:
    from dataclasses import replace

    from toolchain.deploy import deploy

    board = replace(get_board(job.board), kernels=job.kernels)
    result = deploy(job.model, board, job.out / f"{job.model.stem}-{job.board}-{job.kernels}", samples=job.samples,
                    progress=lambda _: None)
    s = result.summary()
    return {"model": job.model.stem, "board": job.board, "kernels": job.kernels, "bit_exact": s["bit_exact"],
            "macs": s["macs"], "instructions": s["instructions_mean"],
            "instr_per_mac": round(s["instructions_per_mac"], 3) if s["instructions_per_mac"] else None,
            "est_ms": round(s["estimated_latency_ms"], 2), "clock_mhz": board.clock_hz / 1e6,
            "arena": s["arena_bytes"], "stack": s["stack_bytes"], "flash": s["flash_bytes"],
            "weights": s["flash_by_part"].get("model weights", 0)}


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
    exported = run.export(run.compress(run.train()))
    named = Path(out) / f"{recipe.name}.tflite"
    named.write_bytes((exported.dir / "model.tflite").read_bytes())
    return named


def run_matrix(models: list[Path], boards: list[str], kernels: list[str], out: Path, jobs: int = 2,
               samples: int = 1) -> list[dict]:
    """Every (model, board, kernel path) measured in the emulator; models are .tflite files or recipes."""
    for k in kernels:
        if k not in TARGETS:
            raise ToolchainError(f"unknown kernel path {k!r}", f"available: {', '.join(TARGETS)}")
    for b in boards:
        if not get_board(b).emulated:
            raise ToolchainError(f"board {b} has no emulator; bench runs emulated boards")
    for m in models:
        if not Path(m).is_file():
            raise ToolchainError(f"model not found: {m}")
    models = [model_file(m, out) for m in models]
    todo = [Job(Path(m), b, k, Path(out), samples) for m in models for b in boards for k in kernels]
    with ProcessPoolExecutor(max(1, jobs)) as pool:
        return list(pool.map(measure, todo))


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def to_markdown(rows: list[dict]) -> str:
    lines = ["| model | board | kernels | bit-exact | MACs | instructions | instr/MAC | est. ms @ clock | arena B "
             "| stack B | flash B (weights) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['board']} | {r['kernels']} | {'yes' if r['bit_exact'] else 'NO'} | "
                     f"{r['macs']:,} | {r['instructions']:,} | {r['instr_per_mac']:.2f} | "
                     f"{r['est_ms']:.1f} @ {r['clock_mhz']:g} MHz | {r['arena']:,} | {r['stack']:,} | "
                     f"{r['flash']:,} ({r['weights']:,}) |")
    return "\n".join(lines)
