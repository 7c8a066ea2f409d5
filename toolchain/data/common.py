"""Helpers every dataset module shares: registration, splits, WAV reading, the .npz cache, progress."""
from __future__ import annotations

import functools
import hashlib
import inspect
import io
import json
import sys
import time
import wave
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from toolchain.data import DATASETS, Dataset, DatasetSource
from toolchain.errors import ToolchainError
from toolchain.fsutil import write_atomic

DEFAULT_CACHE_DIR = Path("build/data")


def dataset_source(name: str, *, kind: str, task: str, description: str) -> Callable:
    """Register the decorated `loader(root, seed, **options)` as dataset `name`; returns the loader.

    Unknown options become a ToolchainError naming the valid ones (instead of a TypeError).
    """

    def decorator(loader: Callable[..., Dataset]) -> Callable[..., Dataset]:
        params = inspect.signature(loader).parameters
        valid = [p for p, spec in params.items() if spec.kind is inspect.Parameter.KEYWORD_ONLY]

        @functools.wraps(loader)
        def checked(root: Path | None, seed: int, **options) -> Dataset:
            unknown = sorted(set(options) - set(valid))
            if unknown:
                raise ToolchainError(
                    f"dataset {name!r} has no option(s) {', '.join(unknown)}",
                    f"its options: {', '.join(valid) or '(none)'}",
                )
            return loader(root, seed, **options)

        DATASETS.register(name)(DatasetSource(name, kind, task, description, checked))
        return loader

    return decorator


def split_indices(n: int, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """A seeded permutation of range(n) cut into parts: part k > 0 gets round(fractions[k] * n) items
    (at least one if its fraction is > 0 and n allows every part one), part 0 the rest."""
    order = np.random.default_rng(seed).permutation(n)
    floor = 1 if n >= len(fractions) else 0
    sizes = [max(floor if f > 0 else 0, int(round(f * n))) for f in fractions[1:]]
    sizes = [n - sum(sizes), *sizes]
    if sizes[0] < 0:
        raise ValueError(f"cannot split {n} items into fractions {fractions}")
    return [np.sort(part) for part in np.split(order, np.cumsum(sizes)[:-1])]


def stratified_split(labels: np.ndarray, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Like split_indices, but each class is cut in the same proportions."""
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for k, cls in enumerate(np.unique(labels)):
        members = np.flatnonzero(labels == cls)
        for i, sub in enumerate(split_indices(len(members), fractions, seed + 7919 * k)):
            parts[i].append(members[sub])
    return [np.sort(np.concatenate(p)) for p in parts]


def split_arrays(x: np.ndarray, labels: np.ndarray, seed: int,
                 fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> dict[str, np.ndarray]:
    """`x_train` ... `y_test` of a stratified split: what `cached_arrays` stores and `dataset_from_arrays` reads."""
    train, val, test = stratified_split(labels, fractions, seed)
    return {"x_train": x[train], "y_train": labels[train], "x_val": x[val], "y_val": labels[val],
            "x_test": x[test], "y_test": labels[test]}


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    """(sample rate, mono float32 samples in [-1, 1]) of a PCM WAV file; channels are averaged."""
    from scipy.io import wavfile

    try:
        rate, data = wavfile.read(path)
    except (ValueError, OSError, EOFError) as exc:
        raise ToolchainError(f"cannot read WAV file {path}: {exc}", "expected a PCM or float WAV file") from exc
    if data.dtype == np.uint8:
        samples = (data.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(data.dtype, np.integer):
        samples = data.astype(np.float32) / float(-np.iinfo(data.dtype).min)
    else:
        samples = data.astype(np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    return int(rate), samples


def write_wav(path: Path, rate: int, samples: np.ndarray) -> None:
    """16-bit PCM mono WAV (samples in [-1, 1]); used by fixtures and for listening to generated data."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def missing_data_error(dataset: str, where: Path | str, expected: Sequence[str], get: str) -> ToolchainError:
    lines = "\n".join(f"    {e}" for e in expected)
    return ToolchainError(
        f"dataset {dataset!r}: data not found or incomplete in {where}\n  expected:\n{lines}",
        f"get it from {get} (no download happens at run time); pass its folder as root=",
    )


class Progress:
    """Progress on stderr, shown only when the work takes more than `quiet_s` seconds."""

    def __init__(self, label: str, total: int, quiet_s: float = 2.0):
        self.label, self.total, self.quiet_s = label, total, quiet_s
        self.done = 0
        self.start = time.monotonic()
        self.last_shown = 0.0
        self.shown = False

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.start >= self.quiet_s and now - self.last_shown >= 1.0:
            self.last_shown = now
            self.shown = True
            sys.stderr.write(f"\r{self.label}: {self.done}/{self.total} ({now - self.start:.0f} s)")
            sys.stderr.flush()

    def close(self) -> None:
        if self.shown:
            elapsed = time.monotonic() - self.start
            sys.stderr.write(f"\r{self.label}: {self.done}/{self.total} done in {elapsed:.1f} s\n")
            sys.stderr.flush()


_SPLIT_KEYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


def cache_path(cache_dir: Path | str | None, name: str, params: dict, seed: int) -> Path:
    key = json.dumps({"name": name, "seed": seed, **params}, sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR) / f"{name}-seed{seed}-{digest}.npz"


def cached_arrays(
    cache_dir: Path | str | None, name: str, params: dict, seed: int, generate: Callable[[], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """The arrays `generate()` returns, stored once as .npz under cache_dir, keyed by name, params and seed.

    `params` must hold everything that changes the output (including a generator version). A cache
    file that cannot be read (truncated, corrupt, not an .npz) is regenerated; it is written atomically.
    """
    path = cache_path(cache_dir, name, params, seed)
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files if k != "params"}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error):
            pass
    arrays = generate()
    buf = io.BytesIO()
    meta = json.dumps({"name": name, "seed": seed, **params}, sort_keys=True, default=str)
    np.savez(buf, params=np.array(meta), **arrays)
    write_atomic(path, buf.getvalue())
    return arrays


def dataset_from_arrays(name: str, task: str, classes: Sequence[str], arrays: dict[str, np.ndarray]) -> Dataset:
    parts = {k: arrays[k] for k in _SPLIT_KEYS}
    for k in _SPLIT_KEYS:
        parts[k] = parts[k].astype(np.float32 if k.startswith("x") else np.int64, copy=False)
    return Dataset(name, task, tuple(parts["x_train"].shape[1:]), tuple(classes), **parts)
