"""Datasets: real loaders (CIFAR-10, Speech Commands v2, VWW-96, ToyADMOS) and offline generators.

Every dataset loads into the same `Dataset` (numpy arrays, already split), so training, calibration
and evaluation never care where the data came from. `load(name, ...)` looks the name up in DATASETS.
"""
from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from toolchain.errors import ToolchainError
from toolchain.registry import Registry


@dataclass(frozen=True)
class Dataset:
    name: str
    task: str  # "classification" or "anomaly" (y: 0 normal, 1 anomalous; train holds normal data only)
    input_shape: tuple[int, ...]
    classes: tuple[str, ...]
    x_train: np.ndarray  # float32 [N, *input_shape]
    y_train: np.ndarray  # int64 [N]
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass(frozen=True)
class DatasetSource:
    name: str
    kind: str  # "real" (needs files on disk) or "generated" (made offline, cached)
    task: str
    description: str
    loader: Callable[..., Dataset]  # loader(root: Path | None, seed: int, **options) -> Dataset


DATASETS: Registry[DatasetSource] = Registry("dataset")


def load(name: str, *, root: Path | str | None = None, seed: int = 0, **options) -> Dataset:
    source = DATASETS.get(name)
    if source is None:
        raise ToolchainError(f"unknown dataset {name!r}", f"known datasets: {', '.join(DATASETS)}")
    return source.loader(Path(root) if root is not None else None, seed, **options)


def check_options(name: str, options: dict, where: str, check_value: Callable) -> None:
    """Dataset `name` exists and takes `options`: known keys, each value of the type (and range) its loader's
    signature declares, checked by `check_value(value, hint, where)` (toolchain.fields.check_value)."""
    source = DATASETS.get(name)
    if source is None:
        raise ToolchainError(f"{where}: unknown dataset {name!r}", f"known datasets: {', '.join(DATASETS)}")
    params = inspect.signature(source.loader).parameters
    hints = typing.get_type_hints(source.loader, include_extras=True)
    valid = [p for p, spec in params.items() if spec.kind is inspect.Parameter.KEYWORD_ONLY]
    for key, value in options.items():
        if key not in valid:
            raise ToolchainError(f"{where}: dataset {name!r} has no option {key!r}",
                                 f"its options: {', '.join(valid) or '(none)'}")
        if key in hints:
            check_value(value, hints[key], f"{where} {key}")


# Each module registers its sources into DATASETS on import.
from toolchain.data import (  # noqa: E402,F401
    cifar10,
    digits,
    keywords,
    machine,
    speech_commands,
    synthetic_vww,
    toyadmos,
    vww,
)
