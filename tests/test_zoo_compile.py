"""The four MLPerf Tiny architectures (random weights, PTQ) compile and run bit-exact on the host."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import compile_and_check, convert
from toolchain import zoo

@pytest.mark.parametrize("name", ["ad", "ic", "kws", "vww"])
def test_zoo_model_compiles_bit_exact(name, tmp_path, keras):
    entry = zoo.get(name)
    keras.utils.set_random_seed(0)
    model = entry.build()
    rep = np.random.default_rng(0).uniform(-1, 1, (32, *entry.input_shape)).astype(np.float32)
    zoo.calibrate_batchnorm(model, rep)
    tflite = convert(model, rep, tmp_path / f"{name}.tflite")
    result = compile_and_check(tflite, tmp_path / "c", samples=4)
    # The compiler's own MAC count agrees with the Keras-level count.
    assert result.plan.macs == zoo.count_macs(model)
    assert 0 < result.plan.live_peak_bytes <= result.arena_bytes
