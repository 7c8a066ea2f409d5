"""Fuzz the loader and the whole compile path (atheris, coverage-guided, with a structured mutator).

    .venv/bin/python tests/fuzz/fuzz.py --seconds 600        # what `make fuzz` runs

Seeds: small models the op tests build (tests/fuzz/seeds.py), written to build/fuzz/seeds/. Mutants
come from the structured mutator (tests/fuzz/mutator.py: ids, shapes, quantization, options, buffers,
order) half of the time and from libFuzzer's byte mutations otherwise. Every input must end in a result
or one ToolchainError; every `--check-every`-th compiled input is also built on the host and compared
with LiteRT BUILTIN_REF. A finding stops the run, is saved under tests/fuzz/corpus/ (replayed by the
default test run from then on) and exits non-zero. At the end: inputs tried and outcomes, as a table
in build/fuzz/report.json (rewritten every few seconds).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE), str(HERE.parent)]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import atheris  # noqa: E402

with atheris.instrument_imports(include=["toolchain"]):
    from harness import compile_one  # noqa: E402
    from mutator import mutate  # noqa: E402

STATS: Counter = Counter()
REFUSALS: Counter = Counter()
STATE = {"accepted": 0, "start": time.time(), "check_every": 25, "corpus": HERE / "corpus",
         "report": REPO / "build" / "fuzz" / "report.json", "reported": 0.0}
REPORT_EVERY_S = 5.0  # libFuzzer ends the process with _exit (no atexit): the report is kept current


def save_finding(data: bytes, exc: BaseException) -> Path:
    corpus = STATE["corpus"]
    corpus.mkdir(parents=True, exist_ok=True)
    path = corpus / f"finding-{hashlib.sha256(data).hexdigest()[:16]}.tflite"
    path.write_bytes(data)
    (path.with_suffix(".txt")).write_text(f"{type(exc).__name__}: {exc}\n"[:4000])
    return path


def test_one_input(data: bytes) -> None:
    STATS["inputs"] += 1
    check = 0
    if STATE["accepted"] and STATE["accepted"] % STATE["check_every"] == 0:
        check = 2
    try:
        # Every other accepted input goes through the dsp path's variants (its C runs on the host too), every third
        # runs every windowed layer in row bands (overlapping buffers everywhere).
        outcome = compile_one(data, check_samples=check, target="dsp" if STATE["accepted"] % 2 else "ref",
                              bands="all" if STATE["accepted"] % 3 == 0 else "auto")
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        STATS["finding"] += 1
        path = save_finding(data, exc)
        report()
        print(f"\nFINDING saved to {path}: {type(exc).__name__}: {str(exc)[:300]}", file=sys.stderr)
        raise
    STATS[outcome.kind] += 1
    if outcome.kind != "refused":
        STATE["accepted"] += 1
    else:
        REFUSALS[re.sub(r"\d+", "N", re.sub(r"'[^' ]*'", "'.'", outcome.detail))[:90]] += 1
    if time.time() - STATE["reported"] > REPORT_EVERY_S:
        report(quiet=True)


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if rng.random() < 0.5:
        mutant = mutate(data, rng)
        if mutant is not None and len(mutant) <= max_size:
            return mutant
    return atheris.Mutate(data, max_size)


def report(quiet: bool = False) -> None:
    STATE["reported"] = time.time()
    elapsed = time.time() - STATE["start"]
    summary = {"seconds": round(elapsed, 1), "inputs": STATS["inputs"], "refused": STATS["refused"],
               "compiled": STATS["compiled"], "bit_exact_checked": STATS["bit-exact"], "findings": STATS["finding"],
               "top_refusals": REFUSALS.most_common(12)}
    STATE["report"].parent.mkdir(parents=True, exist_ok=True)
    STATE["report"].write_text(json.dumps(summary, indent=2) + "\n")
    if not quiet:
        print_summary(summary)


def print_summary(summary: dict) -> None:
    print(f"fuzz: {summary['inputs']} inputs in {summary['seconds']:.0f} s: {summary['refused']} refused with one "
          f"error, {summary['compiled'] + summary['bit_exact_checked']} compiled ({summary['bit_exact_checked']} of "
          f"them checked bit-exact on the host), {summary['findings']} findings; report {STATE['report']}")
    for reason, count in summary["top_refusals"]:
        print(f"  {count:8d}  {reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--check-every", type=int, default=25, help="host-check every Nth compiled input")
    parser.add_argument("--seeds", type=Path, default=REPO / "build" / "fuzz" / "seeds")
    parser.add_argument("--only", default="", help="comma-separated seed names (tests/fuzz/seeds.py), default all")
    parser.add_argument("--summary", action="store_true", help="print the last run's report and exit")
    args, rest = parser.parse_known_args()
    if args.summary:
        print_summary(json.loads(STATE["report"].read_text()))
        return
    from seeds import make_seeds

    print(f"fuzz: preparing seeds in {args.seeds}", file=sys.stderr)
    make_seeds(args.seeds, [n for n in args.only.split(",") if n] or None)
    work = REPO / "build" / "fuzz" / "work"  # libFuzzer adds interesting inputs here; the seeds stay clean
    work.mkdir(parents=True, exist_ok=True)
    STATE["check_every"] = args.check_every
    argv = [sys.argv[0], f"-max_total_time={args.seconds}", "-rss_limit_mb=8192", "-timeout=60", "-max_len=262144",
            f"-artifact_prefix={REPO / 'build' / 'fuzz'}/", *rest, str(work), str(args.seeds)]
    atheris.Setup(argv, test_one_input, custom_mutator=custom_mutator)
    STATE["start"] = time.time()
    atheris.Fuzz()


if __name__ == "__main__":
    main()
