"""Tiny in-memory datasets and recipes for the training tests (random data with a learnable signal)."""
from __future__ import annotations

import numpy as np

from toolchain.data import Dataset
from toolchain.recipe import recipe_from_dict


def tiny_classification(shape, classes: int, n: int = 64, seed: int = 0, name: str = "tiny",
                        validation: bool = True) -> Dataset:
    """Noise plus one fixed random pattern per class: learnable in a few steps. Val and test hold n/4
    samples each (val none without `validation`: skips tracing Keras' evaluation step)."""
    rng = np.random.default_rng(seed)
    patterns = rng.normal(0, 1, (classes, *shape)).astype(np.float32)

    def split(count: int, offset: int):
        y = (np.arange(count) + offset) % classes
        x = rng.normal(0, 1, (count, *shape)).astype(np.float32) + 2 * patterns[y]
        return x, y.astype(np.int64)

    (xt, yt), (xv, yv), (xs, ys) = split(n, 0), split(n // 4 if validation else 0, 1), split(n // 4, 2)
    return Dataset(name, "classification", tuple(shape), tuple(f"c{i}" for i in range(classes)),
                   xt, yt, xv, yv, xs, ys)


def tiny_anomaly(dim: int = 640, n: int = 256, seed: int = 0) -> Dataset:
    """Normal data on a low-dimensional subspace; anomalies off it."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(0, 1, (4, dim)).astype(np.float32)

    def normal(count: int):
        return (rng.normal(0, 1, (count, 4)) @ basis).astype(np.float32)

    anomalous = normal(n // 8) + rng.normal(0, 2, (n // 8, dim)).astype(np.float32)
    x_test = np.concatenate([normal(n // 8), anomalous])
    y_test = np.repeat([0, 1], n // 8)
    x_val = normal(n // 8)
    return Dataset("tiny_machine", "anomaly", (dim,), ("normal", "anomalous"), normal(n), np.zeros(n, np.int64),
                   x_val, np.zeros(len(x_val), np.int64), x_test, y_test)


def tiny_recipe(model: str, *, style: str = "none", ev_assist: bool = False, epochs: int = 3, batch_size: int = 16,
                lr: float = 0.003, dataset: str = "tiny", **train):
    """BatchNorm re-estimation is off unless asked for (`bn_recalibration_samples=N`): it costs an eager
    forward pass per epoch, which dominates these few-step runs."""
    train.setdefault("bn_recalibration_samples", 0)
    return recipe_from_dict({
        "model": {"name": model},
        "exit": {"style": style, "ev_assist": ev_assist, "threshold": 0.5},
        "dataset": {"name": dataset},
        "train": {"epochs": epochs, "batch_size": batch_size, "lr": lr, **train},
        "evaluate": {"thresholds": [0.5, 0.9]},
    }, name=f"tiny_{model}")
