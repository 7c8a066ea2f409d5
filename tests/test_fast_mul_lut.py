"""MUL (inputs of the output's size, and the per-channel broadcast of squeeze-and-excitation) and the lookup-table
activations on the dsp and mve kernel paths (issue 17): bit-exact with LiteRT BUILTIN_REF.

- Python: the dsp (SMMLAR) and mve (VQRDMLAH + VRSHL) requantization formulas equal LiteRT's
  MultiplyByQuantizedMultiplier on every product in [-2^16, 2^16] for hundreds of quantizations, and the same
  exhaustive check rejects a formula that rounds negative ties the wrong way;
- host C: tm_mul_s8_dsp[_channel] equals the portable tm_mul_s8 on all 65,536 input pairs and on random shapes
  with tails, fused clamps and left shifts, also with the output written over its input (from its start or a few
  bytes before it);
- device: one model of MULs and LUT activations (odd sizes, both gate orders, a gate of 16 or fewer channels and
  of more, fused ReLUs, rescales of 3 and 0.7 edited in, a broadcast the variants leave to the portable kernel) on
  mps2-an386 and mps2-an505 (dsp) and mps3-an547 (mve), every layer's output compared with LiteRT's; and the
  instructions per element of the portable and fast kernels measured side by side, outputs over their inputs.
"""
from __future__ import annotations

import ctypes
import re
import shutil
import subprocess

import numpy as np
import pytest

import op_models as om
import tflite_edit as te
from conftest import convert
from toolchain.compiler.driver import FIRMWARE_DIR, KERNEL_INCLUDE
from toolchain.compiler.ops.dsp import mul as dsp_mul
from toolchain.compiler.ops.dsp.add import rdbp, srdhm
from toolchain.compiler.ops.mve import mul as mve_mul
from toolchain.compiler.quant import quantize_multiplier

KERNELS = FIRMWARE_DIR / "kernels"
ACTIVATIONS = ("none", "relu", "band")


def _need_gcc():
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found")


def _random_folds(n: int, seed: int):
    """Quantizations as TFLite makes them: rescales from 1e-7 (m may round to 0) to 30 (left shifts up to 5)."""
    rng = np.random.default_rng(seed)
    for k in range(n):
        multiplier, shift = quantize_multiplier(float(10 ** rng.uniform(-7, 1.5)))
        out_zp = int(rng.integers(-128, 128))
        act = {"none": (-128, 127), "relu": (out_zp, 127),
               "band": (max(out_zp - 20, -128), min(out_zp + 40, 127))}[ACTIVATIONS[k % 3]]
        offsets = tuple(int(o) for o in rng.integers(-127, 129, 2))
        yield dsp_mul.MulFold(channel=bool(k & 1), input1=0, offsets=offsets, multiplier=multiplier, shift=shift,
                              output_offset=out_zp, activation=act)
    # QuantizeMultiplier's edges: m = 2^30 with shift 0 or 1, m rounding up to 2^31, m = 0 (a rescale below 2^-32)
    for real in (0.5, 1.0, 0.25 + 2**-40, 2.0 - 2**-30, 1e-11):
        yield dsp_mul.MulFold(False, 0, (128, -127), *quantize_multiplier(real), -128, (-128, 127))


# ---- Python: the formulas, exhaustively ----------------------------------------------------------------------
def test_fast_formulas_equal_litert_on_every_product():
    folds = list(_random_folds(400, seed=7))
    for fold in folds:
        assert dsp_mul.exact(fold), fold
        assert dsp_mul.exact(fold, mve_mul.kernel_model), fold
    assert {f.shift > 0 for f in folds} == {True, False} and any(f.multiplier == 0 for f in folds)


def test_exhaustive_check_rejects_wrong_tie_rounding():
    """Without the [x < 0] term both formulas round negative ties up, as VRSHL / plain shifts do: the product
    check must notice (so a passing check means something)."""
    def dsp_half_up(p, fold):
        k = dsp_mul.kernel_params(fold)
        y = dsp_mul.smmlar(p << k.product_shift, k.multiplier, k.rounding) >> k.right_shift
        return np.clip(np.clip(y, -128, 127), *fold.activation), True

    def mve_half_up(p, fold):
        y = (srdhm(p, fold.multiplier) + (1 << (fold.right_shift - 1))) >> fold.right_shift
        return np.clip(y + fold.output_offset, *fold.activation), True

    fold = dsp_mul.MulFold(False, 0, (0, 0), *quantize_multiplier(1 / 64), 0, (-128, 127))
    assert dsp_mul.exact(fold) and dsp_mul.exact(fold, mve_mul.kernel_model)
    assert not dsp_mul.exact(fold, dsp_half_up)
    assert not dsp_mul.exact(fold, mve_half_up)
    # and LiteRT's reference really is half away from zero on a negative tie: -96 / 64 = -1.5 -> -2
    assert rdbp(np.array([-96]), 6)[0] == -2


# ---- host C: the dsp kernels against the portable one ----------------------------------------------------------
class Dims(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


class Activation(ctypes.Structure):
    _fields_ = [("min", ctypes.c_int32), ("max", ctypes.c_int32)]


class RefParams(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int32) for name in (
        "input1_offset", "input2_offset", "output_offset", "multiplier", "shift")] + [("activation", Activation)]


class Broadcast(ctypes.Structure):
    _fields_ = [("input1_stride", Dims), ("input2_stride", Dims)]


class DspParams(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int32) for name in (
        "input1_offset", "input2_offset", "product_shift", "multiplier", "rounding", "right_shift")] + \
        [("activation", Activation)]


@pytest.fixture(scope="module")
def mul_lib(tmp_path_factory):
    _need_gcc()
    lib = tmp_path_factory.mktemp("mul") / "libmul.so"
    sources = [KERNELS / "ref" / "tm_mul_s8.c", KERNELS / "ref" / "tm_support.c", KERNELS / "dsp" / "tm_mul_s8.c"]
    cmd = ["gcc", "-std=c99", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror", f"-I{KERNEL_INCLUDE}",
           *map(str, sources), "-o", str(lib)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return ctypes.CDLL(str(lib))


PTR = ctypes.POINTER(ctypes.c_int8)


def _ptr(a: np.ndarray):
    return a.ctypes.data_as(PTR)


def _portable(lib, fold, a, b, pixels: int, depth: int, channel: bool) -> np.ndarray:
    ref = RefParams(fold.offsets[0], fold.offsets[1], fold.output_offset, fold.multiplier, fold.shift,
                    Activation(*fold.activation))
    big = Dims(1, 1, pixels, depth)
    small = Dims(1, 1, 1, depth) if channel else big
    stride = Dims(0, 0, depth if pixels > 1 else 0, 1)
    broadcast = Broadcast(stride, Dims(0, 0, 0, 1) if channel else stride)
    out = np.zeros(pixels * depth, np.int8)
    assert lib.tm_mul_s8(None, ctypes.byref(ref), ctypes.byref(broadcast), ctypes.byref(big), _ptr(a),
                         ctypes.byref(small), _ptr(b), ctypes.byref(big), _ptr(out)) == 0
    return out


def _dsp(lib, fold, a, b, pixels: int, depth: int, channel: bool, out: np.ndarray) -> None:
    k = dsp_mul.kernel_params(fold)
    params = DspParams(k.input1_offset, k.input2_offset, k.product_shift, k.multiplier, k.rounding, k.right_shift,
                       Activation(*fold.activation))
    big = Dims(1, 1, pixels, depth)
    small = Dims(1, 1, 1, depth) if channel else big
    fn = lib.tm_mul_s8_dsp_channel if channel else lib.tm_mul_s8_dsp
    assert fn(None, ctypes.byref(params), ctypes.byref(big), _ptr(a), ctypes.byref(small), _ptr(b),
              ctypes.byref(big), _ptr(out)) == 0


def test_dsp_mul_equals_portable_on_every_input_pair(mul_lib):
    grid = np.arange(-128, 128, dtype=np.int8)
    a, b = np.ascontiguousarray(np.repeat(grid, 256)), np.ascontiguousarray(np.tile(grid, 256))
    for size in (a.size, a.size - 3):  # whole groups of four, and a tail of one
        for k, fold in enumerate(_random_folds(60, seed=size)):
            fold = dsp_mul.MulFold(False, 0, fold.offsets, fold.multiplier, fold.shift, fold.output_offset,
                                   fold.activation)
            want = _portable(mul_lib, fold, a[:size], b[:size], 1, size, False)
            got = np.zeros(size, np.int8)
            _dsp(mul_lib, fold, a[:size], b[:size], 1, size, False, got)
            bad = np.flatnonzero(got != want)
            assert bad.size == 0, f"{fold}: a={a[bad[:5]]} b={b[bad[:5]]} got {got[bad[:5]]} want {want[bad[:5]]}"


@pytest.mark.parametrize("overlap", [None, 0, 1, 3, 6])
def test_dsp_channel_mul_equals_portable_on_random_shapes(mul_lib, overlap):
    """Random [pixels, C] shapes times a [C] gate, and same-size inputs of random length; `overlap`: the output
    written over the big input, starting that many bytes before it (what the planner's in-place rule allows)."""
    rng = np.random.default_rng(11 if overlap is None else 20 + overlap)
    for k, fold in enumerate(_random_folds(60, seed=3)):
        pixels, depth = int(rng.integers(1, 40)), int(rng.integers(2, 70))
        x = rng.integers(-128, 128, pixels * depth, dtype=np.int8)
        gate = rng.integers(-128, 128, depth, dtype=np.int8)
        gate[:2] = (-128, 127)
        y = rng.integers(-128, 128, x.size, dtype=np.int8)
        for channel, other in ((True, gate), (False, y)):
            p, d = (pixels, depth) if channel else (1, x.size)
            want = _portable(mul_lib, fold, x, other, p, d, channel)
            if overlap is None:
                out = np.zeros_like(x)
                _dsp(mul_lib, fold, x, other, p, d, channel, out)
            else:
                buffer = np.zeros(x.size + overlap, np.int8)
                buffer[overlap:] = x
                _dsp(mul_lib, fold, buffer[overlap:], other, p, d, channel, buffer)
                out = buffer[:x.size]
            assert np.array_equal(out, want), (k, fold, channel, pixels, depth, np.flatnonzero(out != want)[:5])


# ---- device: one model of MULs and LUT activations -------------------------------------------------------------
def mul_lut_model(keras):
    tf, _ = om.import_tf()
    keras.utils.set_random_seed(5)
    L = keras.layers
    inputs = keras.Input((5, 7, 19), name="input")  # 35 pixels of 19 channels: odd everywhere
    wide = L.Conv2D(40, 1, name="wide")(inputs)
    narrow = L.Conv2D(13, 1, name="narrow")(inputs)
    other = L.Conv2D(19, 1, name="other")(inputs)

    def gate(x, channels, act, name):
        g = L.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
        return L.Conv2D(channels, 1, activation=act, name=f"{name}_gate")(g)

    outs = [
        L.Multiply(name="same")([inputs, other]),                                      # 665 elements
        L.Activation("relu", name="same_relu")(L.Multiply(name="same_mul")([other, other])),
        L.Multiply(name="se_wide")([wide, gate(wide, 40, "sigmoid", "g40")]),    # 40 channels: > 16
        L.Multiply(name="se_narrow_left")([gate(narrow, 13, "sigmoid", "g13"), narrow]),  # gate first, 13
        L.Multiply(name="se_relu")([other, gate(other, 19, "sigmoid", "g19")]),
        L.Multiply(name="rescale_up")([wide, wide]),     # its output scale is edited: rescale above 1 (left shift)
        L.Multiply(name="rescale_07")([narrow, narrow]),  # and edited to a rescale in [0.5, 1) (no shift)
        L.Multiply(name="hw1")([inputs, L.Conv2D(1, 1, name="one")(inputs)]),        # [H, W, 1]: portable
        L.Activation("sigmoid", name="sigmoid")(other),
        L.Activation("tanh", name="tanh")(wide),
        L.Lambda(lambda x: x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0), name="hard_swish")(narrow),  # HARD_SWISH
        L.LeakyReLU(0.2, name="leaky")(other),
    ]
    outs[4] = L.Activation("relu", name="se_relu_act")(outs[4])
    # A 1x1 conv after each: the concatenation would otherwise impose its quantization on their outputs
    heads = [L.Flatten()(L.Conv2D(3, 1, name=f"head{k}")(o)) for k, o in enumerate(outs)]
    return keras.Model(inputs, L.Concatenate()(heads), name="mul_lut")


def _edit_rescales(path):
    """The two `rescale_*` MULs (the 6th and 7th MUL) get output scales of s1*s2/3 and s1*s2/0.7."""
    def change(model):
        sg = te.subgraph(model)
        for nth, ratio in ((5, 3.0), (6, 0.7)):
            op = sg.operators[te.op_index(model, "MUL", nth)]
            a, b, out = (sg.tensors[t].quantization for t in (*op.inputs, op.outputs[0]))
            out.scale = [float(np.float32(a.scale[0] * b.scale[0] / ratio))]

    path.write_bytes(te.edit(path.read_bytes(), change))


@pytest.fixture(scope="module")
def model(tmp_path_factory, keras):
    from toolchain.compiler.frontend import load_tflite
    from toolchain.compiler.ops.mul import rescale

    out = tmp_path_factory.mktemp("mul_lut")
    m = mul_lut_model(keras)
    rep = np.random.default_rng(0).uniform(-1, 1, (32, *m.input_shape[1:])).astype(np.float32)
    path = convert(m, rep, out / "mul_lut.tflite")
    _edit_rescales(path)
    g = load_tflite(path)
    kinds = [op.kind for op in g.ops]
    assert kinds.count("MUL") == 8 and {"LOGISTIC", "TANH", "HARD_SWISH", "LEAKY_RELU"} <= set(kinds), kinds
    muls = [op for op in g.ops if op.kind == "MUL"]
    shifts = [quantize_multiplier(rescale(*(g.tensors[t] for t in (*op.inputs, op.outputs[0]))))[1] for op in muls]
    assert shifts[5] == 2 and shifts[6] == 0 and all(s < 0 for s in shifts[:5]), shifts
    assert sum(op.options.get("fusedActivationFunction") == "RELU" for op in muls) == 2
    return path


FAST_CALLS = {"tm_mul_s8_{path}(": 4, "tm_mul_s8_{path}_channel(": 3, "tm_mul_s8(": 1}


@pytest.mark.emulator
@pytest.mark.parametrize("board,path", [("mps2-an386", "dsp"), ("mps2-an505", "dsp"), ("mps3-an547", "mve")])
def test_every_layer_bit_exact_on_device(model, board, path, tmp_path):
    from toolchain.boards import get_board
    from toolchain.pipeline.api import deploy

    result = deploy(model, get_board(board), tmp_path, kernels=path, samples=3, bands="none", dump_tensors=True,
                    progress=lambda _: None)
    assert result.bit_exact, result.mismatches[:5]
    assert result.tensors is not None and result.tensors.identical, result.tensors.summary()
    model_c = (tmp_path / "c" / "model.c").read_text()
    calls = {**FAST_CALLS, f"tm_lut_s8_{path}(": 7, "tm_lut_s8(": 0}  # 4 activations, 3 gates
    for call, count in calls.items():
        call = call.format(path=path)
        assert len(re.findall(re.escape(call), model_c)) == count, call


def test_dsp_c_is_bit_exact_on_the_host(model, tmp_path):
    from toolchain.compiler import compile_model
    from toolchain.verify.check import check_against_reference

    _need_gcc()
    compile_model(model, tmp_path, target="dsp", bands="none")
    model_c = (tmp_path / "model.c").read_text()
    assert model_c.count("tm_mul_s8_dsp(") == 4 and model_c.count("tm_mul_s8_dsp_channel(") == 3
    assert model_c.count("tm_lut_s8_dsp(") == 7
    report = check_against_reference(model, tmp_path, samples=6, seed=2)
    assert report.ok, report.summary()


def _overlapping_kinds(plan) -> set[str]:
    """The ops whose output shares bytes with the input it finishes."""
    sizes = {t.id: t.bytes for t in plan.tensors if t.id is not None}
    return {plan.layers[o.layer].op for o in plan.overlaps if -sizes[o.writer] < o.shift < sizes[o.reader]}


def _per_element(result, layer_filter) -> dict[str, tuple[float, int]]:
    """(instructions per output element, elements) of sample 0's layers that `layer_filter` picks, by layer."""
    out = {}
    for layer, count in zip(result.plan.layers, result.layer_instructions(0)):
        if count is not None and layer_filter(layer):
            elements = int(np.prod(layer.outputs[0]))
            out[f"{layer.op}:{layer.location}"] = (count / elements, elements)
    return out


@pytest.mark.emulator
@pytest.mark.parametrize("board,path", [("mps2-an386", "dsp"), ("mps3-an547", "mve")])
def test_fast_kernels_take_fewer_instructions(model, board, path, tmp_path):
    """Per element, on the layers large enough for the call's fixed cost not to dominate (the gates' 13-40
    element tables are not): MUL takes under 60% of the portable kernel's instructions, a table lookup under 80%
    (dsp) and under half (mve)."""
    from toolchain.boards import get_board
    from toolchain.pipeline.api import deploy

    runs = {}
    for kernels in ("ref", path):
        result = deploy(model, get_board(board), tmp_path / kernels, kernels=kernels, samples=1, bands="none",
                        progress=lambda _: None)
        assert result.bit_exact, result.mismatches[:5]
        if kernels == path:  # the fast kernels ran with outputs written over their inputs
            assert {"MUL", "TANH", "LOGISTIC"} <= _overlapping_kinds(result.plan), result.plan.overlaps
        runs[kernels] = _per_element(result, lambda layer: layer.op in (
            "MUL", "LOGISTIC", "TANH", "HARD_SWISH", "LEAKY_RELU"))
    assert runs["ref"].keys() == runs[path].keys() and len(runs["ref"]) == 15
    for name, (ref, elements) in runs["ref"].items():
        fast = runs[path][name][0]
        print(f"{board} {name} ({elements} elements): ref {ref:.2f} {path} {fast:.2f} instructions/element")
        if elements < 256 or "hw1" in name:  # a call's fixed cost; the portable kernel on both paths
            continue
        limit = 0.6 if name.startswith("MUL") else {"dsp": 0.8, "mve": 0.5}[path]
        assert fast < limit * ref, (name, ref, fast)
