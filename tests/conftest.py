"""Shared fixtures: int8 conversion and compile-then-compare against LiteRT BUILTIN_REF."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from toolchain.compiler import compile_model
from toolchain.verify.check import check_against_reference


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


@pytest.fixture(scope="session")
def keras():
    from toolchain.tf import import_tf

    return import_tf()[1]


def convert(model, rep: np.ndarray, path: Path, **kwargs) -> Path:
    from toolchain.export.tflite import convert_int8

    convert_int8(model, rep, path, **kwargs)
    return path


def compile_and_check(tflite: Path, out_dir: Path, samples: int = 8, seed: int = 0, **options):
    """Compile (`options` of compile_model), run `samples` random inputs on the host and on LiteRT BUILTIN_REF,
    assert bit-exact."""
    result = compile_model(tflite, out_dir, **options)
    report = check_against_reference(tflite, out_dir, samples=samples, seed=seed)
    assert report.ok, report.summary()
    return result


@pytest.fixture(scope="session")
def zoo_tflite(tmp_path_factory, keras):
    """zoo_tflite(name) -> the zoo model with seeded random weights, BN-calibrated, PTQ'd (cached per session)."""
    from toolchain import zoo

    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            entry = zoo.get(name)
            keras.utils.set_random_seed(0)
            model = entry.build()
            rep = np.random.default_rng(0).uniform(-1, 1, (32, *entry.input_shape)).astype(np.float32)
            zoo.calibrate_batchnorm(model, rep)
            cache[name] = convert(model, rep, tmp_path_factory.mktemp(name) / f"{name}.tflite")
        return cache[name]

    return get
