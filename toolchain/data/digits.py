"""Real handwritten digits in CIFAR's shape: scikit-learn's 1797 8x8 digits -> [32, 32, 3], 0..255.

The 8x8 images (values 0..16) are scaled to 0..255, upscaled 4x (bilinear, half-pixel centres) and
copied into 3 channels, so an IC model built for CIFAR-10 (raw pixels, int8 scale 1, zp -128) takes
them unchanged. Split: seeded, per class, 70/15/15. `augment=k` adds k randomly shifted copies
(up to `max_shift` pixels in each direction, zero fill) of every *training* image. No download: the
digits ship inside scikit-learn.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from toolchain.data import Dataset
from toolchain.data.common import dataset_source, stratified_split
from toolchain.errors import ToolchainError
from toolchain.fields import NonNegativeInt

CLASSES = tuple(str(d) for d in range(10))
SIZE = 32


@functools.lru_cache(maxsize=None)
def _upsample_matrix(src: int, dst: int) -> np.ndarray:
    """[dst, src] bilinear interpolation weights (half-pixel centres, edges clamped)."""
    pos = np.clip((np.arange(dst) + 0.5) * src / dst - 0.5, 0, src - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, src - 1)
    frac = pos - lo
    m = np.zeros((dst, src))
    m[np.arange(dst), lo] += 1 - frac
    m[np.arange(dst), hi] += frac
    return m


def _shift(images: np.ndarray, rng: np.random.Generator, max_shift: int) -> np.ndarray:
    out = np.zeros_like(images)
    for i, (dy, dx) in enumerate(rng.integers(-max_shift, max_shift + 1, size=(len(images), 2))):
        src = images[i, max(0, -dy) : SIZE - max(0, dy), max(0, -dx) : SIZE - max(0, dx)]
        out[i, max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]] = src
    return out


def _load_sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ToolchainError("dataset 'digits' needs scikit-learn", "pip install scikit-learn") from exc
    bunch = load_digits()
    return bunch.images.astype(np.float64), bunch.target.astype(np.int64)


@dataset_source("digits", kind="generated", task="classification",
                description="scikit-learn 8x8 handwritten digits upscaled to 32x32x3, 0..255 (CIFAR-shaped)")
def load_digits(root: Path | None, seed: int, *, augment: NonNegativeInt = 2, max_shift: NonNegativeInt = 3) -> Dataset:
    images, y = _load_sklearn_digits()
    up = _upsample_matrix(8, SIZE)
    big = np.einsum("ij,njk,lk->nil", up, images * (255.0 / 16.0), up)
    x = np.repeat(big[..., None], 3, axis=-1).astype(np.float32)
    train, val, test = stratified_split(y, (0.7, 0.15, 0.15), seed)
    x_train, y_train = x[train], y[train]
    if augment > 0:
        rng = np.random.default_rng([seed, 1])
        x_train = np.concatenate([x_train, *(_shift(x[train], rng, max_shift) for _ in range(augment))])
        y_train = np.tile(y_train, augment + 1)
    return Dataset("digits", "classification", (SIZE, SIZE, 3), CLASSES,
                   x_train, y_train, x[val], y[val], x[test], y[test])
