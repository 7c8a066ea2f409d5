"""Issue 17's acceptance: the common tf_keras layers, each as a small model with Keras's default unknown batch
size, go through `tinyml export` and compile bit-exact with LiteRT BUILTIN_REF; on the emulated Cortex-M4 too
(every layer in the slow run, a sample of them in the default run); a MobileNetV3-Small-like model and a GRU
keyword model run end to end in QEMU."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import op_models as om
from conftest import compile_and_check
from toolchain.cli import main
from toolchain.compiler.frontend import load_tflite

EMULATOR = all(shutil.which(t) for t in ("cmake", "arm-none-eabi-gcc", "qemu-system-arm"))


ON_THE_DEVICE_BY_DEFAULT = ("Conv2D-dilated", "Conv2DTranspose", "GlobalMaxPooling2D", "UpSampling2D-bilinear", "GRU")


def export_through_the_cli(model, shape, tmp_path: Path) -> Path:
    """What a user does: save the model, write calibration data, `tinyml export`."""
    saved, calibration, out = tmp_path / "model.keras", tmp_path / "calibration.npy", tmp_path / "model.tflite"
    model.save(saved)
    np.save(calibration, np.random.default_rng(1).uniform(-1, 1, (16, *shape)).astype(np.float32))
    assert main(["export", str(saved), "-o", str(out), "--calibration", str(calibration)]) == 0
    return out


@pytest.fixture(scope="module")
def exported(keras, tmp_path_factory):
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            model, shape = om.layer_model(name)
            cache[name] = export_through_the_cli(model, shape, tmp_path_factory.mktemp(name.lower()))
        return cache[name]

    return get


@pytest.mark.parametrize("name", sorted(om.LAYERS))
def test_layer_with_an_unknown_batch_compiles_bit_exact(exported, tmp_path, name):
    tflite = exported(name)
    assert load_tflite(tflite).ops, name
    compile_and_check(tflite, tmp_path / "out", samples=4)


def _on_the_cortex_m4(tflite: Path, out: Path):
    from toolchain.boards import get_board
    from toolchain.pipeline import api

    run = api.deploy(tflite, get_board("mps2-an386"), out, samples=2, progress=lambda _: None)
    assert run.bit_exact, run
    return run


@pytest.mark.emulator
@pytest.mark.skipif(not EMULATOR, reason="needs cmake, arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("name", ON_THE_DEVICE_BY_DEFAULT)
def test_layer_runs_bit_exact_on_the_cortex_m4(exported, tmp_path, name):
    _on_the_cortex_m4(exported(name), tmp_path / "run")


@pytest.mark.slow
@pytest.mark.emulator
@pytest.mark.skipif(not EMULATOR, reason="needs cmake, arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("name", sorted(set(om.LAYERS) - set(ON_THE_DEVICE_BY_DEFAULT)))
def test_every_layer_runs_bit_exact_on_the_cortex_m4(exported, tmp_path, name):
    _on_the_cortex_m4(exported(name), tmp_path / "run")


@pytest.mark.emulator
@pytest.mark.skipif(not EMULATOR, reason="needs cmake, arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("build, shape, needed", [
    (om.mobilenet_v3_small_like, (96, 96, 3), {"HARD_SWISH", "MUL", "MEAN", "DEPTHWISE_CONV_2D"}),
    (om.gru_keywords, (49, 10), {"LOGISTIC", "TANH", "MUL", "FULLY_CONNECTED"}),
], ids=["mobilenet-v3-small-like", "gru-keywords"])
def test_user_models_run_end_to_end_in_qemu(tmp_path, build, shape, needed):
    from toolchain import zoo

    model = build()
    # Random weights: BatchNorm statistics from data, so the activations (and the logits) are not all dead.
    zoo.calibrate_batchnorm(model, np.random.default_rng(2).uniform(-1, 1, (16, *shape)).astype(np.float32))
    tflite = export_through_the_cli(model, shape, tmp_path)
    ops = {op.kind for op in load_tflite(tflite).ops}
    assert needed <= ops, sorted(ops)
    run = _on_the_cortex_m4(tflite, tmp_path / "run")
    assert run.run.layers
