"""Exact guest-instruction counts from QEMU via the tm_icount TCG plugin.

`build_plugin` compiles tm_icount.c (with its classifier tm_classify.h) with the host gcc (cached by source hash),
`plugin_args` gives the extra qemu-system-arm argv, `marker_address` finds the marker function in the firmware
ELF, `read_counts` parses the plugin's output and `read_profile` the per-class counts of a `classes=True` run
(priced in cycles by `toolchain.runners.cycles`).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from toolchain.errors import MissingToolError, ToolchainError

SOURCE = Path(__file__).with_name("tm_icount.c")
SOURCES = (SOURCE, Path(__file__).with_name("tm_classify.h"))  # all hashed: a classifier change rebuilds


def build_plugin(cache_dir: Path) -> Path:
    """Compile tm_icount.c into cache_dir/tm_icount-<sha>.so (reused if present); return its path."""
    cache_dir = Path(cache_dir)
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in SOURCES)).hexdigest()
    so = cache_dir / f"tm_icount-{digest[:16]}.so"
    if so.is_file():
        return so
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise MissingToolError("'gcc' is not installed (needed to build the QEMU instruction-count plugin)",
                               "apt-get install gcc (or run `make setup`)")
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{so.name}.", suffix=".so", dir=cache_dir)
    os.close(fd)
    try:
        proc = subprocess.run(
            [gcc, "-shared", "-fPIC", "-O2", "-std=gnu11", "-Wall", "-Wextra", "-fvisibility=hidden",
             "-o", tmp, str(SOURCE)],
            capture_output=True, text=True)
        if proc.returncode != 0:
            raise ToolchainError(f"building the QEMU plugin failed:\n{proc.stderr.strip()}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, so)  # atomic: concurrent builders race harmlessly to the same content
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return so


def _qemu_opt(value: str) -> str:
    # QEMU's option parser splits on ',' and reads ',,' as a literal comma
    return str(value).replace(",", ",,")


def plugin_args(so: Path, marker_addr: int, out: Path, *, classes: bool = False) -> list[str]:
    """Extra qemu argv loading the plugin with the marker address and result file; `classes`: also count
    executions per timing class (see `read_profile`)."""
    return ["-plugin", f"{_qemu_opt(str(so))},marker={marker_addr & ~1:#x},out={_qemu_opt(str(out))}"
            + (",classes=on" if classes else "")]


def marker_address(elf: Path, symbol: str = "tm_profile_layer") -> int:
    """Address of `symbol`'s first instruction in `elf` (Thumb bit cleared), via arm-none-eabi-nm."""
    nm = shutil.which("arm-none-eabi-nm")
    if nm is None:
        raise MissingToolError("'arm-none-eabi-nm' is not installed",
                               "apt-get install binutils-arm-none-eabi (or run `make setup`)")
    proc = subprocess.run([nm, str(elf)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"arm-none-eabi-nm failed on {elf}: {proc.stderr.strip()}")
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == symbol and parts[1] in "TtWw":
            return int(parts[0], 16) & ~1
    raise ToolchainError(f"symbol '{symbol}' not found in {elf}",
                         "build the firmware with profiling enabled (the marker must not be inlined)")


@dataclass(frozen=True)
class ClassProfile:
    """A `classes=on` run: for every marker hit and at exit, the instruction count and the executions per
    timing class (tm_classify.h), plus `xfer` (registers moved by LDM/STM/PUSH/POP/LDRD/STRD) and `taken`
    (conditional branches taken). Counters only grow, so a span's counts are a difference of two records."""
    names: tuple[str, ...]  # the plugin's class names, then "xfer", "taken"
    hits: tuple[tuple[int, ...], ...]  # per hit: (instructions, *counters in `names` order)
    total: tuple[int, ...]

    def counters(self, record: tuple[int, ...]) -> dict[str, int]:
        return dict(zip(self.names, record[1:]))


def _parse(out: Path) -> tuple[tuple[str, ...], list[tuple[int, ...]], tuple[int, ...]]:
    out = Path(out)
    try:
        lines = [line.split() for line in out.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise ToolchainError(f"the instruction-count plugin wrote no result ({out})",
                             "did QEMU exit normally? a killed QEMU writes nothing") from None
    try:
        names: tuple[str, ...] = ()
        if lines and lines[0][0] == "classes":
            names = tuple(lines.pop(0)[1:])
        width = 1 + len(names)
        if lines[0][0] != "hits" or lines[-1][0] != "total":
            raise ValueError
        n = int(lines[0][1])
        hits = [tuple(int(x) for x in line) for line in lines[1:-1]]
        total = tuple(int(x) for x in lines[-1][1:])
        if len(hits) != n or any(len(h) != width for h in hits) or len(total) != width:
            raise ValueError
    except (IndexError, ValueError):
        raise ToolchainError(f"malformed instruction-count file {out}") from None
    return names, hits, total


def read_counts(out: Path) -> tuple[list[int], int]:
    """Parse the plugin's result file: (instruction count before each marker hit, total count)."""
    _, hits, total = _parse(out)
    return [h[0] for h in hits], total[0]


def read_profile(out: Path) -> ClassProfile:
    """Parse the result file of a `classes=True` run."""
    names, hits, total = _parse(out)
    if not names:
        raise ToolchainError(f"{out} has no per-class counts (the plugin ran without classes=on)")
    return ClassProfile(names, tuple(hits), total)
