"""CIFAR-10 from its python-pickle batches (the MLPerf Tiny IC data set).

Pixels stay raw: float32 0..255, NHWC [N, 32, 32, 3]. The MLPerf IC reference model's int8 input is
scale 1.0, zero point -128, i.e. exactly the raw pixel minus 128, so no rescaling here; a model that
wants 0..1 divides by 255 itself (a Rescaling layer).
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from toolchain.data import Dataset
from toolchain.data.common import dataset_source, missing_data_error
from toolchain.errors import ToolchainError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (extract with tar xzf)"


def _find_folder(root: Path | None) -> Path:
    if root is None:
        candidates = [Path.home() / ".keras" / "datasets" / FOLDER]
    else:
        candidates = [root / FOLDER, root]
    for folder in candidates:
        if all((folder / name).is_file() for name in (*TRAIN_BATCHES, TEST_BATCH)):
            return folder
    where = candidates[0] if root is None else f"{root / FOLDER} (or {root} itself)"
    raise missing_data_error(
        "cifar10",
        where,
        [f"{FOLDER}/{name}" for name in (*TRAIN_BATCHES, TEST_BATCH)]
        + ["(root=None looks in ~/.keras/datasets/, where keras.datasets.cifar10.load_data() keeps it)"],
        URL,
    )


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, OSError) as exc:
        raise ToolchainError(
            f"cifar10: {path} is not a CIFAR-10 python batch ({type(exc).__name__}: {exc})",
            f"expected a pickled dict with keys b'data' (uint8 [N, 3072]) and b'labels'; re-extract {URL}",
        ) from exc
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ToolchainError(
            f"cifar10: {path} has data of shape {data.shape} and {len(labels)} labels",
            "expected uint8 [N, 3072] (1024 red, 1024 green, 1024 blue values per image) and N labels",
        )
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise ToolchainError(f"cifar10: {path} has labels outside 0..9")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels


@dataset_source("cifar10", kind="real", task="classification",
                description="CIFAR-10 32x32x3, raw pixels 0..255 (MLPerf Tiny IC)")
def load_cifar10(root: Path | None, seed: int, *, val_size: int = 5000, shuffle: bool = False) -> Dataset:
    """Train = data_batch_1..5 minus the validation part; validation = the last `val_size` training
    images (after a seeded shuffle when `shuffle`); test = test_batch."""
    folder = _find_folder(root)
    parts = [_read_batch(folder / name) for name in TRAIN_BATCHES]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    if not 0 <= val_size < len(x):
        raise ToolchainError(f"cifar10: val_size={val_size} but there are only {len(x)} training images")
    if shuffle:
        order = np.random.default_rng(seed).permutation(len(x))
        x, y = x[order], y[order]
    x_test, y_test = _read_batch(folder / TEST_BATCH)
    cut = len(x) - val_size
    f32 = np.float32
    return Dataset(
        "cifar10", "classification", (32, 32, 3), CLASSES,
        x[:cut].astype(f32), y[:cut], x[cut:].astype(f32), y[cut:], x_test.astype(f32), y_test,
    )
