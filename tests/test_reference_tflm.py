"""`--reference tflm`: FULLY_CONNECTED rounds as tflite-micro (TFLite's double rounding) on every kernel path, and
the checks compare with tflite-micro's interpreter. On the FC autoencoder (AD) the generated code is bit-exact
with the reference it was compiled for and differs from the other one on some outputs, on the host and on the
Cortex-M4 (mps2-an386), including every layer's output (--dump-tensors)."""
from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest

from toolchain.boards import get_board
from toolchain.cli import main
from toolchain.compiler import compile_model
from toolchain.compiler.hostrun import HostModel
from toolchain.errors import ToolchainError
from toolchain.pipeline.api import deploy
from toolchain.verify.check import check_against_reference, random_inputs
from toolchain.verify.reference import reference_model

pytestmark = pytest.mark.emulator

REFERENCES = ("litert", "tflm")


@pytest.fixture(scope="module")
def ad(zoo_tflite):
    return zoo_tflite("ad")


@pytest.fixture(scope="module")
def compiled(ad, tmp_path_factory):
    d = tmp_path_factory.mktemp("tflm")
    for r in REFERENCES:
        compile_model(ad, d / r, reference=r)
    return d


def _differences(host_dir, ref, samples: int = 8) -> int:
    """Elements where the compiled model's outputs differ from `ref`'s over `samples` seeded random inputs."""
    host = HostModel(host_dir)
    rng = np.random.default_rng(0)
    total = 0
    for _ in range(samples):
        xs = random_inputs(host.plan.inputs, rng)
        ours, _ = host.run(xs)
        total += sum(int((a.reshape(-1) != b.reshape(-1)).sum()) for a, b in zip(ours, ref.run(xs)))
    return total


@pytest.mark.parametrize("reference", REFERENCES)
def test_host_bit_exact_with_its_reference_only(ad, compiled, reference):
    report = check_against_reference(ad, compiled / reference, samples=8)
    assert report.ok, report.summary()
    assert ("tflite-micro" if reference == "tflm" else "LiteRT") in report.summary()
    other = reference_model(ad, "litert" if reference == "tflm" else "tflm")
    assert _differences(compiled / reference, other) > 0  # the references disagree on FC rounding


def test_cli_compile_check_tflm(ad, tmp_path, capsys):
    rc = main(["compile", str(ad), "-o", str(tmp_path / "c"), "--reference", "tflm", "--kernels", "dsp",
               "--check", "3"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "identical to tflite-micro" in out, out


def test_missing_tflite_micro_is_one_error(ad, compiled, monkeypatch):
    monkeypatch.setitem(sys.modules, "tflite_micro.python.tflite_micro", None)
    with pytest.raises(ToolchainError, match=r"pip install --pre tflite-micro"):
        check_against_reference(ad, compiled / "tflm", samples=1)


@pytest.mark.parametrize("kernels, reference", [("ref", "tflm"), ("dsp", "litert")])
def test_device_bit_exact_with_its_reference(ad, tmp_path, kernels, reference):
    if not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")):
        pytest.skip("needs qemu-system-arm and arm-none-eabi-gcc")
    result = deploy(ad, get_board("mps2-an386"), tmp_path, kernels=kernels, reference=reference, samples=4,
                    dump_tensors=True, progress=lambda _: None)
    assert result.bit_exact, result.mismatches[:3]
    assert result.tensors is not None and result.tensors.identical, result.tensors.summary()
    # deploy embeds `samples` seeded random inputs (random_batch, seed 0): the other reference disagrees on some
    rng = np.random.default_rng(0)
    batch = [random_inputs(result.plan.inputs, rng) for _ in range(4)]
    other = reference_model(ad, "litert" if reference == "tflm" else "tflm")
    assert all(np.array_equal(a, b) for outs, xs in zip(result.reference_outputs, batch)
               for a, b in zip(outs, reference_model(ad, reference).run(xs)))
    assert sum(int((a != b).sum()) for outs, xs in zip(result.reference_outputs, batch)
               for a, b in zip(outs, other.run(xs))) > 0
