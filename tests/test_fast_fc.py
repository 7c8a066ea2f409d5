"""The fast FULLY_CONNECTED kernels (firmware/kernels/{dsp,mve}/tm_fully_connected_s8.c, ops/{dsp,mve}/
fully_connected.py): bit-exact with LiteRT BUILTIN_REF and with tflite-micro (`--reference tflm`) on the host
(dsp) and in QEMU on the Cortex-M4 (mps2-an386), M33 (mps2-an505) and M55 (mps3-an547), over depths 1, 3, 17, 70
and 257, odd output counts, batches 1 and 3, ReLU, per-tensor and per-channel weights and int8 extremes; the
variants are really called, their scratch matches the C, and the fast LiteRT requantization agrees with the
exact one on adversarial accumulators."""
from __future__ import annotations

import ctypes
import re
import shutil
import subprocess

import numpy as np
import pytest

import tflite_edit as te
from conftest import convert
from toolchain.boards import get_board
from toolchain.compiler.driver import FIRMWARE_DIR, KERNEL_INCLUDE, compile_model
from toolchain.compiler.frontend import load_tflite
from toolchain.compiler.ops.dsp.fully_connected import fast_multipliers, high_shift, interleaved
from toolchain.compiler.ops.fully_connected import decompose_scale
from toolchain.compiler.ops.variants import scratch_bytes, variant_for
from toolchain.compiler.passes import optimize
from toolchain.pipeline.api import deploy
from toolchain.verify.check import check_against_reference

pytestmark = pytest.mark.emulator

KERNELS = FIRMWARE_DIR / "kernels"


def _fc_model(keras):
    """Batch 3 (a Dense on [3, depth]) through depths 257, 70, 17, 3, then batch 1 after a Flatten through
    depths 15, 1 and 13; output counts 70, 17, 3, 5, 1, 13, 9 (blocks of four and every remainder)."""
    keras.utils.set_random_seed(7)

    def dense(units, seed, activation=None):
        return keras.layers.Dense(units, activation=activation,
                                  kernel_initializer=keras.initializers.RandomUniform(-0.6, 0.6, seed=seed),
                                  bias_initializer=keras.initializers.RandomUniform(-0.4, 0.4, seed=seed + 50))

    x = inp = keras.Input((3, 257), batch_size=1)  # static: FULLY_CONNECTED with keep_num_dims, not Tensordot
    x = dense(70, 1, "relu")(x)   # depth 257, batch 3
    x = dense(17, 2)(x)           # depth 70
    x = dense(3, 3, "relu")(x)    # depth 17, 3 rows: remainder only
    x = dense(5, 4)(x)            # depth 3
    x = keras.layers.Flatten()(x)
    x = dense(1, 5)(x)            # depth 15, batch 1, one output
    x = dense(13, 6, "relu")(x)   # depth 1
    x = dense(9, 7)(x)            # depth 13
    return keras.Model(inp, x)


@pytest.fixture(scope="module")
def models(keras, tmp_path_factory):
    """The model with per-channel and with per-tensor weights. Calibrated on a narrow range: the full-range
    random test inputs then drive accumulators and outputs to the int8 extremes."""
    model = _fc_model(keras)
    rep = np.random.default_rng(0).uniform(-0.5, 0.5, (32, 3, 257)).astype(np.float32)
    d = tmp_path_factory.mktemp("fast_fc")
    return {"channel": convert(model, rep, d / "fc_channel.tflite"),
            "tensor": convert(model, rep, d / "fc_tensor.tflite", per_channel=False)}


def _fc_ops(tflite):
    g = optimize(load_tflite(tflite))
    return g, [op for op in g.ops if op.kind == "FULLY_CONNECTED"]


def test_model_covers_the_shapes(models):
    g, ops = _fc_ops(models["channel"])
    shapes = [(g.tensors[op.inputs[0]].size // g.tensors[op.inputs[1]].shape[1], *g.tensors[op.inputs[1]].shape)
              for op in ops]
    assert shapes == [(3, 70, 257), (3, 17, 70), (3, 3, 17), (3, 5, 3), (1, 1, 15), (1, 13, 1), (1, 9, 13)]
    assert any(op.options.get("fusedActivationFunction") == "RELU" for op in ops)
    tg, tops = _fc_ops(models["tensor"])
    assert all(not tg.tensors[op.inputs[1]].quant.per_channel for op in tops)


@pytest.mark.parametrize("weights", ["channel", "tensor"])
@pytest.mark.parametrize("reference", ["litert", "tflm"])
def test_dsp_host_bit_exact(models, tmp_path, weights, reference):
    out = tmp_path / "c"
    compile_model(models[weights], out, target="dsp", reference=reference, bands="none")
    model_c = (out / "model.c").read_text()
    kernel = "tm_fully_connected_s8_dsp" + ("_tflm" if reference == "tflm" else "")
    assert len(re.findall(rf"\b{kernel}\(", model_c)) == 7
    report = check_against_reference(models[weights], out, samples=3)
    assert report.ok, report.summary()


@pytest.mark.parametrize("board, kernels, weights, reference", [
    ("mps2-an386", "dsp", "channel", "litert"),
    ("mps2-an386", "dsp", "channel", "tflm"),
    ("mps2-an505", "dsp", "tensor", "litert"),
    ("mps2-an505", "dsp", "tensor", "tflm"),
    ("mps3-an547", "mve", "channel", "litert"),
    ("mps3-an547", "mve", "tensor", "tflm"),
])
def test_device_bit_exact(models, tmp_path, board, kernels, weights, reference):
    if not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")):
        pytest.skip("needs qemu-system-arm and arm-none-eabi-gcc")
    result = deploy(models[weights], get_board(board), tmp_path, kernels=kernels, reference=reference, samples=3,
                    bands="none", progress=lambda _: None)
    assert result.bit_exact, result.mismatches[:3]
    kernel = f"tm_fully_connected_s8_{kernels}" + ("_tflm" if reference == "tflm" else "")
    assert len(re.findall(rf"\b{kernel}\(", (tmp_path / "c" / "model.c").read_text())) == 7


def _buffer_size_lib(tmp_path, path):
    """The C `_get_buffer_size` of a path's FC kernel, built for the host (the mve one only for its arithmetic:
    its .c needs arm_mve.h, so the function is compiled from a copy of its body)."""
    src = tmp_path / "size.c"
    src.write_text(f'#include "{path}/tm_fully_connected_s8.h"\n'
                   f"int32_t size(int32_t n, int32_t c) {{ tm_dims d = {{n, 1, 1, c}}; "
                   f"return tm_fully_connected_s8_{path}_get_buffer_size(&d, &d, &d); }}\n")
    lib = tmp_path / f"lib{path}.so"
    sources = [src, KERNELS / "dsp" / "tm_fully_connected_s8.c", KERNELS / "ref" / "tm_fully_connected_s8.c"]
    if path == "mve":
        sources = [src]
    if path == "mve":  # the body without the MVE code: the same padded_depth arithmetic
        body = (KERNELS / "mve" / "tm_fully_connected_s8.c").read_text()
        start = body.index("int32_t tm_fully_connected_s8_mve_get_buffer_size")
        pad = body[body.index("static inline int32_t padded_depth"):body.index("/* bias + the four")]
        (tmp_path / "mve_size.c").write_text('#include <stddef.h>\n#include "mve/tm_fully_connected_s8.h"\n'
                                             '#define CHUNK 16\n'
                                             + pad + body[start:])
        sources.append(tmp_path / "mve_size.c")
    subprocess.run(["gcc", "-std=c99", "-shared", "-fPIC", "-O1", f"-I{KERNEL_INCLUDE}", f"-I{KERNELS}",
                    f"-I{KERNELS / path}", *map(str, sources), "-o", str(lib)], check=True)
    fn = ctypes.CDLL(str(lib)).size
    fn.restype, fn.argtypes = ctypes.c_int32, [ctypes.c_int32, ctypes.c_int32]
    return fn


@pytest.mark.parametrize("path", ["dsp", "mve"])
def test_scratch_matches_buffer_size(models, tmp_path, path):
    size = _buffer_size_lib(tmp_path, path)
    g, ops = _fc_ops(models["channel"])
    for op in ops:
        v = variant_for(op, g, path)
        assert v is not None and v.kernel_for(op, g) == f"tm_fully_connected_s8_{path}"
        batches = g.tensors[op.inputs[0]].size // g.tensors[op.inputs[1]].shape[1]
        assert scratch_bytes(op, g, path) == size(batches, g.tensors[op.inputs[1]].shape[1])


def test_interleaved_layout():
    w = np.arange(6 * 5, dtype=np.int64).reshape(6, 5).astype(np.int8)
    packed = interleaved(w, 4, 8, 4).reshape(-1)
    assert packed.size == 6 * 8  # padded to 8 here (the dsp kernel pads to 16)
    assert packed[:16].tolist() == [0, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 13, 15, 16, 17, 18]
    assert packed[16:20].tolist() == [4, 0, 0, 0] and packed[32:40].tolist() == [20, 21, 22, 23, 24, 0, 0, 0]


HARNESS = r"""
#include "dsp/tm_fully_connected_s8.h"
#include "tm_support.h"
int32_t fast(int32_t acc, uint32_t multiplier, int32_t high_shift, uint32_t hi, uint32_t lo, int32_t e)
{
    const tm_fully_connected_quant q = { .mantissa_hi = &hi, .mantissa_lo = &lo, .exponent = &e };
    return tm_fully_connected_requantize_fast(acc, multiplier, high_shift, &q, 0);
}
int32_t exact(int32_t acc, uint32_t hi, uint32_t lo, int32_t e)
{
    return tm_fully_connected_requantize_litert(acc, hi, lo, e);
}
"""


def test_fast_requantization_matches_exact(tmp_path):
    """Random scales (with the layer's high_shift taken from a larger channel scale, as for per-channel
    weights), random accumulators and accumulators placed exactly on and next to rounding boundaries."""
    (tmp_path / "h.c").write_text(HARNESS)
    lib = tmp_path / "libh.so"
    subprocess.run(["gcc", "-std=c99", "-shared", "-fPIC", "-O2", f"-I{KERNEL_INCLUDE}", f"-I{KERNELS}",
                    str(tmp_path / "h.c"), str(KERNELS / "ref" / "tm_fully_connected_s8.c"), "-o", str(lib)],
                   check=True)
    so = ctypes.CDLL(str(lib))
    so.fast.restype, so.exact.restype = ctypes.c_int32, ctypes.c_int32
    so.fast.argtypes = [ctypes.c_int32, ctypes.c_uint32, ctypes.c_int32, ctypes.c_uint32, ctypes.c_uint32,
                        ctypes.c_int32]
    so.exact.argtypes = [ctypes.c_int32, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_int32]
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(300):
        scale = float(2.0 ** rng.uniform(-31, -2.05))
        larger = scale * float(2.0 ** rng.uniform(0, 3))
        shift = high_shift([scale, larger])
        if not 2 <= shift <= 31:
            continue
        (multiplier,) = fast_multipliers([scale], shift)
        m, e = decompose_scale(scale)
        hi, lo = m >> 32, m & 0xFFFFFFFF
        accs = [int(a) for a in rng.integers(-2 ** 31, 2 ** 31, 20)] + [int(a) for a in rng.integers(-5000, 5000, 20)]
        for k in rng.integers(0, 2 ** 20, 10):  # acc * scale near k + 1/2
            near = int(round((int(k) + 0.5) / scale))
            accs += [a for a in (near - 1, near, near + 1, -near) if -2 ** 31 <= a < 2 ** 31]
        accs += [-2 ** 31, 2 ** 31 - 1, 0, 1, -1]
        for a in accs:
            assert so.fast(a, multiplier, shift, hi, lo, e) == so.exact(a, hi, lo, e), (a, scale, shift)
            checked += 1
    assert checked > 10000


def _no_scratch_model(keras, tmp_path):
    """Two layers that make the arena's peak, so neither gets the scratch of the widened form: depth 24 -> 120
    outputs per row (longer than the 64-byte widened row: the output row lends its last bytes to it; the last
    iteration half padding), batch 3; then 120 -> 4 with ReLU and output zero point -90 (an activation range
    narrower than int8's: the general clamp)."""
    keras.utils.set_random_seed(8)
    x = inp = keras.Input((3, 24), batch_size=1)
    x = keras.layers.Dense(120, activation="relu", bias_initializer=keras.initializers.RandomUniform(-0.4, 0.4))(x)
    x = keras.layers.Dense(4, activation="relu", bias_initializer=keras.initializers.RandomUniform(-0.4, 0.4))(x)
    rep = np.random.default_rng(3).uniform(-0.5, 0.5, (32, 3, 24)).astype(np.float32)
    tflite = convert(keras.Model(inp, x), rep, tmp_path / "fc_no_scratch.tflite")

    def change(model):
        fc = te.operator(model, "FULLY_CONNECTED", 1)
        te.tensor(model, fc.outputs[0]).quantization.zeroPoint = [-90]
    tflite.write_bytes(te.edit(tflite.read_bytes(), change))
    return tflite


def test_output_row_lends_its_bytes_to_the_widened_input(keras, tmp_path):
    tflite = _no_scratch_model(keras, tmp_path)
    out = tmp_path / "c"
    compile_model(tflite, out, target="dsp", bands="none")
    model_c = (out / "model.c").read_text()
    assert len(re.findall(r"\btm_fully_connected_s8_dsp\(&tm_no_scratch, ", model_c)) == 2
    assert re.search(r"\.output_offset = -90, \.activation = \{ \.min = -90, \.max = 127 \}", model_c)
    report = check_against_reference(tflite, out, samples=3)
    assert report.ok, report.summary()
    if shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc"):
        result = deploy(tflite, get_board("mps2-an386"), tmp_path / "run", kernels="dsp", samples=3, bands="none",
                        progress=lambda _: None)
        assert result.bit_exact, result.mismatches[:3]
