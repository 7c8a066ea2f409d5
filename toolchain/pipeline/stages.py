"""A cached, resumable stage runner.

Each stage writes into `<root>/<stage>/` and finishes by writing `manifest.json`: the key (a hash of
everything the stage's output depends on: its settings, the toolchain version, the upstream stages'
keys and the files they produced), the files it wrote with their hashes, and its metrics. A stage whose
manifest matches its key and whose files are intact is skipped; an interrupted or failed stage leaves
no directory behind (it runs in a staging directory renamed into place), so a re-run resumes there.

Ctrl-C stops the run at the latest at the next stage boundary, even when the code of a stage swallows the
KeyboardInterrupt (TensorFlow sometimes does): see `Pipeline.interruptible`.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from toolchain import __version__
from toolchain.errors import ToolchainError
from toolchain.fsutil import atomic_dir, is_staging, sha256_file, write_json
from toolchain.paths import REPO

MANIFEST = "manifest.json"
# Errors of writing; EACCES/EPERM count only for paths in (or above) the run root.
WRITE_ERRNOS = {errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM}


@dataclass(frozen=True)
class StageResult:
    name: str
    dir: Path
    key: str
    metrics: dict
    cached: bool
    seconds: float


def source_hash(*paths: str) -> str:
    """A fingerprint of the code a stage runs (files under these repo paths), so a code change reruns it."""
    h = hashlib.sha256()
    for rel in paths:
        root = REPO / rel
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()
                                                     and "__pycache__" not in p.parts)
        for p in files:
            h.update(str(p.relative_to(REPO)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def stage_key(name: str, settings: dict, upstream: list[StageResult]) -> str:
    blob = json.dumps({"stage": name, "settings": settings, "toolchain": __version__,
                       "upstream": [u.key for u in upstream]}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _files(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): sha256_file(p) for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name != MANIFEST}


def _up_to_date(directory: Path, key: str) -> dict | None:
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("key") != key:
        return None
    for rel, digest in manifest.get("files", {}).items():
        p = directory / rel
        if not p.is_file() or sha256_file(p) != digest:
            return None
    return manifest


def _write_error(exc: OSError, root: Path) -> str | None:
    """'cannot write DIR: <errno text>' when `exc` is a failure to write into the run root, else None."""
    if exc.errno not in WRITE_ERRNOS:
        return None
    path = Path(os.fsdecode(exc.filename)) if isinstance(exc.filename, (str, bytes, os.PathLike)) else root
    inside = path.absolute().is_relative_to(root.absolute()) or root.absolute().is_relative_to(path.absolute())
    if not inside and exc.errno in (errno.EACCES, errno.EPERM):
        return None
    if is_staging(path):
        path = path.parent
    return f"cannot write {path}: {exc.strerror or os.strerror(exc.errno)}"


class Pipeline:
    def __init__(self, root: Path, progress: Callable[[str], None] = print):
        self.root = Path(root)
        self.progress = progress
        self.results: list[StageResult] = []
        self.interrupted = False

    @contextmanager
    def interruptible(self) -> Iterator[Pipeline]:
        """While inside, SIGINT records itself in `interrupted` and raises KeyboardInterrupt; if the stage's code
        swallows that, `check_interrupted` at the next stage boundary raises it again. The previous handler comes
        back on leaving. (Signal handlers can only be set from the main thread; elsewhere this does nothing.)"""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def on_sigint(signum, frame):
            self.interrupted = True
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)

    def check_interrupted(self) -> None:
        """A stage boundary: stop here if Ctrl-C was pressed, whatever the stage's code made of it."""
        if self.interrupted:
            raise KeyboardInterrupt

    def stage(self, name: str, settings: dict, run: Callable[[Path], dict],
              upstream: list[StageResult] | None = None) -> StageResult:
        """Run `run(staging_dir) -> metrics` unless the stage is up to date."""
        self.check_interrupted()
        upstream = upstream if upstream is not None else list(self.results)
        key = stage_key(name, settings, upstream)
        directory = self.root / name
        number = len(self.results) + 1
        manifest = _up_to_date(directory, key)
        if manifest is not None:
            self.progress(f"[{number}] {name}: up to date, skipped")
            result = StageResult(name, directory, key, manifest.get("metrics", {}), True, 0.0)
        else:
            self.progress(f"[{number}] {name} ...")
            start = time.monotonic()
            try:
                with atomic_dir(directory) as staging:
                    metrics = run(staging) or {}
                    self.check_interrupted()  # an interrupted stage is not committed, even if it returned
                    write_json(staging / MANIFEST, {"stage": name, "key": key, "settings": settings,
                                                    "toolchain_version": __version__,
                                                    "upstream": {u.name: u.key for u in upstream},
                                                    "files": _files(staging), "metrics": metrics})
            except Exception as exc:
                if self.interrupted:
                    raise KeyboardInterrupt from exc
                raise self._stage_error(name, exc) from exc
            seconds = time.monotonic() - start
            self.progress(f"[{number}] {name}: done in {seconds:.1f} s")
            result = StageResult(name, directory, key, metrics, False, seconds)
        self.results.append(result)
        self.check_interrupted()
        return result

    def _stage_error(self, name: str, exc: Exception) -> ToolchainError:
        if isinstance(exc, ToolchainError):
            return ToolchainError(f"stage '{name}' failed: {exc.message}",
                                  exc.hint or "the earlier stages' artifacts are kept; fix and re-run")
        cannot_write = _write_error(exc, self.root) if isinstance(exc, OSError) else None
        if cannot_write:  # re-running would fail the same way
            return ToolchainError(f"stage '{name}' failed: {cannot_write}",
                                  "free some space, or give a writable --out directory")
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return ToolchainError(f"stage '{name}' failed: {detail}",
                              "the earlier stages' artifacts are kept; re-run to resume here")
