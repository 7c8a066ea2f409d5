"""A cached, resumable stage runner.

Each stage writes into `<root>/<stage>/` and finishes by writing `manifest.json`: the key (a hash of
everything the stage's output depends on: its settings, the toolchain version, the upstream stages'
keys and the files they produced), the files it wrote with their hashes, and its metrics. A stage whose
manifest matches its key and whose files are intact is skipped; an interrupted or failed stage leaves
no directory behind (it runs in a staging directory renamed into place), so a re-run resumes there.
"""
from __future__ import annotations

import hashlib
import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from toolchain import __version__
from toolchain.errors import ToolchainError
from toolchain.fsutil import atomic_dir, sha256_file, write_json

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class StageResult:
    name: str
    dir: Path
    key: str
    metrics: dict
    cached: bool
    seconds: float


REPO = Path(__file__).resolve().parents[2]


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


class Pipeline:
    def __init__(self, root: Path, progress: Callable[[str], None] = print):
        self.root = Path(root)
        self.progress = progress
        self.results: list[StageResult] = []

    def stage(self, name: str, settings: dict, run: Callable[[Path], dict],
              upstream: list[StageResult] | None = None) -> StageResult:
        """Run `run(staging_dir) -> metrics` unless the stage is up to date."""
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
                    write_json(staging / MANIFEST, {"stage": name, "key": key, "settings": settings,
                                                    "toolchain_version": __version__,
                                                    "upstream": {u.name: u.key for u in upstream},
                                                    "files": _files(staging), "metrics": metrics})
            except ToolchainError as exc:
                raise ToolchainError(f"stage '{name}' failed: {exc.message}",
                                     exc.hint or "the earlier stages' artifacts are kept; fix and re-run") from exc
            except Exception as exc:
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                raise ToolchainError(f"stage '{name}' failed: {detail}",
                                     "the earlier stages' artifacts are kept; re-run to resume here") from exc
            seconds = time.monotonic() - start
            self.progress(f"[{number}] {name}: done in {seconds:.1f} s")
            result = StageResult(name, directory, key, metrics, False, seconds)
        self.results.append(result)
        return result
