"""Element-wise binary ops (ADD, SUB, MUL, MAXIMUM, MINIMUM, SQUARED_DIFFERENCE) with NumPy broadcasting: bit-exact
with LiteRT BUILTIN_REF on the host for seeded random shapes and every broadcast pattern (same shape, a per-channel
constant, a [1, 1, W, 1] constant on the left, a scalar constant, activations broadcasting either way or both),
with fused ReLUs; a standalone BatchNormalization (MUL + ADD with [C] constants); tflite-micro agrees; and the
Cortex-M4 (mps2-an386) runs them bit-exactly. What we do not cover is refused with a reason."""
from __future__ import annotations

import json
import shutil
import zlib

import numpy as np
import pytest

import op_models as om
from conftest import compile_and_check, convert
from toolchain.compiler import compile_model
from toolchain.compiler.frontend import load_tflite
from toolchain.compiler.ir import Graph, Op, Quant, Tensor
from toolchain.compiler.ops import OPS
from toolchain.compiler.ops.binary import broadcast_shape, walk

# pattern -> (first operand, second operand, fused activation); operands as in op_models._operand
PATTERNS = {
    "same": ("full", "conv", None),
    "const_c": ("full", "const_c", None),
    "const_w_left": ("const_w", "full", None),
    "scalar": ("full", "scalar", None),
    "hw1_left": ("hw1", "full", None),
    "w1_c1": ("w1", "c1", None),
}
ACTIVATED = {"relu_c1": ("full", "c1", "relu"), "relu6_hw1": ("hw1", "conv", "relu6")}
OPS_PATTERNS = {
    "ADD": {**PATTERNS, **ACTIVATED},
    "SUB": {**PATTERNS, **ACTIVATED},
    "MUL": {**PATTERNS, **ACTIVATED},
    "MAXIMUM": PATTERNS,
    "MINIMUM": PATTERNS,
    "SQUARED_DIFFERENCE": PATTERNS,
}
CASES = [(op, pattern) for op, patterns in OPS_PATTERNS.items() for pattern in patterns]


def _shape(op: str, pattern: str) -> tuple[int, int, int]:
    """A seeded random feature-map shape (H, W, D) per case: H may be 1, D is not (an [H, W, 1] operand must
    broadcast)."""
    rng = np.random.default_rng(zlib.crc32(f"{op}/{pattern}".encode()))
    return int(rng.integers(1, 7)), int(rng.integers(2, 9)), int(rng.integers(2, 9))


def _kinds(tflite) -> list[str]:
    return [op.kind for op in load_tflite(tflite).ops]


@pytest.mark.parametrize("op, pattern", CASES, ids=[f"{o}-{p}" for o, p in CASES])
def test_binary_op_bit_exact(op, pattern, tmp_path, keras):
    first, second, act = OPS_PATTERNS[op][pattern]
    model = om.binary(op, first, second, activation=act, shape=_shape(op, pattern))
    tflite = convert(model, om.representative(model.input_shape[1:]), tmp_path / "m.tflite")
    g = load_tflite(tflite)
    ops = [o for o in g.ops if o.kind == op]
    assert len(ops) == 1, [o.kind for o in g.ops]
    if act:  # the converter fused the ReLU: no op of its own
        assert ops[0].options["fusedActivationFunction"] == act.upper()
        assert not {"RELU", "RELU6"} & set(_kinds(tflite))
    a, b = (g.tensors[t] for t in ops[0].inputs)
    if pattern != "same":
        assert a.shape != b.shape or a.is_const or b.is_const, (a.shape, b.shape)
    result = compile_and_check(tflite, tmp_path / "out", samples=8)
    assert op in [layer.op for layer in result.plan.layers]


@pytest.mark.parametrize("after", ["input", "pool"])
def test_standalone_batchnorm_is_mul_and_add_with_channel_constants(after, tmp_path, keras):
    model = om.batchnorm(after=after)
    tflite = convert(model, om.representative(model.input_shape[1:]), tmp_path / "bn.tflite")
    g = load_tflite(tflite)
    binary = [o for o in g.ops if o.kind in ("MUL", "ADD")]
    assert [o.kind for o in binary] == ["MUL", "ADD"], [o.kind for o in g.ops]
    for o in binary:
        const = [g.tensors[t] for t in o.inputs if g.tensors[t].is_const]
        assert len(const) == 1 and const[0].size == g.tensors[o.outputs[0]].shape[-1]
    compile_and_check(tflite, tmp_path / "out", samples=8)
    if after == "input":  # MUL and ADD run in place: the model input, both outputs at one offset, still bit-exact
        plan = json.loads((tmp_path / "out" / "model_plan.json").read_text())
        feature_map = [t["offset"] for t in plan["tensors"] if t["shape"] == [1, *model.input_shape[1:]]]
        assert len(feature_map) == 3 and len(set(feature_map)) == 1, plan["tensors"]


def test_kernel_paths_keep_the_same_shape_add_variants(tmp_path, keras):
    """Same-shape ADD keeps the dsp / mve kernels; a broadcasting one calls the portable tm_add_s8_broadcast on
    every path (bit-exact on the host's dsp path; the M4 test below runs dsp on the device)."""
    for pattern, want in (("same", "tm_add_s8_{path}("), ("const_c", "tm_add_s8_broadcast(")):
        first, second, _ = PATTERNS[pattern]
        model = om.binary("ADD", first, second, shape=(4, 5, 8))
        tflite = convert(model, om.representative(model.input_shape[1:]), tmp_path / f"{pattern}.tflite")
        for path in ("dsp", "mve"):  # the host runs the dsp kernels (ACLE stand-ins), not the mve ones
            out = tmp_path / f"{pattern}_{path}"
            if path == "dsp":
                compile_and_check(tflite, out, samples=4, target=path)
            else:
                compile_model(tflite, out, target=path)
            assert want.format(path=path) in (out / "model.c").read_text()


def test_broadcast_walk_reads_what_numpy_broadcasting_reads():
    rng = np.random.default_rng(0)
    for _ in range(300):
        rank = int(rng.integers(0, 5))
        out = tuple(int(d) for d in rng.integers(1, 5, rank))
        a = tuple(d if rng.random() < 0.5 else 1 for d in out)[int(rng.integers(0, rank + 1)):]
        b = tuple(d if rng.random() < 0.5 else 1 for d in out)[int(rng.integers(0, rank + 1)):]
        want_shape = broadcast_shape(a, b)
        xa, xb = rng.integers(-128, 128, a), rng.integers(-128, 128, b)
        want = (xa * 1000 + xb).reshape(want_shape)
        w = walk(a, b, want_shape)
        got = np.zeros(w.output, np.int64)
        for idx in np.ndindex(*w.output):
            got[idx] = xa.reshape(-1)[np.dot(idx, w.stride1)] * 1000 + xb.reshape(-1)[np.dot(idx, w.stride2)]
        np.testing.assert_array_equal(got.reshape(-1), want.reshape(-1), err_msg=f"{a} {b}")
        # neighbouring dimensions that broadcast alike are merged: the innermost run is as long as it can be
        pattern = [(d1 == 1, d2 == 1) for d1, d2, o in zip(w.input1, w.input2, w.output) if o > 1]
        assert all(p != q for p, q in zip(pattern, pattern[1:])), (a, b, w)


# -- what we refuse -------------------------------------------------------------------------------------------

def _graph(kind, shapes, scales=(0.02, 0.03, 0.05), zero_points=(1, -3, 5), dtypes=("int8",) * 3, options=None):
    tensors = {i: Tensor(i, f"t{i}", tuple(s), d, Quant((sc,), (zp,)))
               for i, (s, sc, zp, d) in enumerate(zip(shapes, scales, zero_points, dtypes))}
    op = Op(kind, (0, 1), (2,), options or {}, location=f"op #0 {kind}")
    return Graph(tensors, (op,), (0, 1), (2,), ("a", "b"), ("out",)), op


@pytest.mark.parametrize("kind, graph, reason", [
    ("ADD", dict(shapes=[(1, 2, 2, 2, 3), (3,), (1, 2, 2, 2, 3)]), r"rank 5; broadcasting ADD covers rank <= 4"),
    ("MUL", dict(shapes=[(2, 3), (4,), (2, 4)]), r"do not broadcast"),
    ("SUB", dict(shapes=[(2, 3), (3,), (3, 3)]), r"has shape \[3, 3\], but its inputs give \[2, 3\]"),
    ("SUB", dict(shapes=[(4,), (4,), (4,)], dtypes=("int16",) * 3), r"is int16, only int8"),
    ("MAXIMUM", dict(shapes=[(4,), (1,), (4,)]), r"MAXIMUM compares raw int8 values: its inputs and output must "
                                                  r"share scale and zero point"),
    ("MINIMUM", dict(shapes=[(4,), (4,), (4,)], scales=(0.1, 0.1, 0.1), zero_points=(0, 0, 1)),
     r"must share scale and zero point"),
    ("SQUARED_DIFFERENCE", dict(shapes=[(4,), (4,), (4,)], scales=(0.5, 0.5, 1e-5)),
     r"output rescale factor .* is not below 1"),
    ("ADD", dict(shapes=[(4,), (4,), (4,)], scales=(1.0, 1.0, 1e-9)), r"output rescale factor .* too large"),
    ("MUL", dict(shapes=[(4,), (4,), (4,)], options={"fusedActivationFunction": "TANH"}),
     r"fused activation TANH"),
])
def test_refused_with_a_reason(kind, graph, reason):
    import re

    g, op = _graph(kind, **graph)
    problems = OPS.get(kind).check(op, g)
    assert any(re.search(reason, p) for p in problems), problems


def test_supported_quantization_is_accepted():
    for kind in ("ADD", "SUB", "MUL", "SQUARED_DIFFERENCE"):
        g, op = _graph(kind, [(1, 3, 4, 5), (5,), (1, 3, 4, 5)])
        assert OPS.get(kind).check(op, g) == [], kind
    for kind in ("MAXIMUM", "MINIMUM"):
        g, op = _graph(kind, [(1, 3, 1, 5), (4, 1), (1, 3, 4, 5)], scales=(0.1,) * 3, zero_points=(2,) * 3)
        assert OPS.get(kind).check(op, g) == [], kind


# -- tflite-micro and the emulator ----------------------------------------------------------------------------

def _all_ops(tmp_path, keras):
    """One model with every binary op and several broadcast patterns (as in the brief's BatchNorm case too)."""
    from toolchain.tf import import_tf

    tf, _ = import_tf()
    keras.utils.set_random_seed(3)
    h, w, c = 5, 6, 3
    inputs = keras.Input((h, w, c), name="input")
    x = om.batchnorm(input_shape=(h, w, c), seed=3).get_layer("bn")(inputs)  # MUL and ADD with [C] constants
    x = keras.layers.Conv2D(4, 1, name="conv")(x)
    y = keras.layers.Conv2D(1, 1, name="conv_hw1")(x)
    z = keras.layers.Multiply(name="mul")([x, y])
    s = keras.layers.Subtract(name="sub")([z, keras.layers.AveragePooling2D((h, 1), name="pool")(x)])
    m = keras.layers.Maximum(name="max")([s, x])
    n = keras.layers.Minimum(name="min")([m, keras.layers.GlobalAveragePooling2D(keepdims=True, name="gap")(x)])
    q = keras.layers.Lambda(lambda t: tf.math.squared_difference(t[0], t[1]), name="sqdiff")([n, y])
    model = keras.Model(inputs, keras.layers.Activation("relu", name="relu")(keras.layers.Add(name="add")([q, x])))
    tflite = convert(model, om.representative((h, w, c)), tmp_path / "all.tflite")
    assert {"ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE"} <= set(_kinds(tflite))
    return tflite


def test_agrees_with_tflite_micro(tmp_path, keras):
    from tflite_micro.python.tflite_micro import runtime

    from toolchain.compiler.hostrun import HostModel

    tflite = _all_ops(tmp_path, keras)
    compile_and_check(tflite, tmp_path / "out", samples=4)
    host = HostModel(tmp_path / "out")
    micro = runtime.Interpreter.from_file(str(tflite))
    rng = np.random.default_rng(5)
    for _ in range(8):
        x = rng.integers(-128, 128, size=(1, 5, 6, 3), dtype=np.int8)
        micro.set_input(x, 0)
        micro.invoke()
        np.testing.assert_array_equal(host.run([x])[0][0], micro.get_output(0))


@pytest.mark.emulator
def test_cortex_m4_bit_exact(tmp_path, keras):
    if not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")):
        pytest.skip("needs qemu-system-arm and arm-none-eabi-gcc")
    from toolchain.boards import get_board
    from toolchain.pipeline.api import deploy

    tflite = _all_ops(tmp_path, keras)
    result = deploy(tflite, get_board("mps2-an386"), tmp_path / "m4", samples=4, dump_tensors=True,
                    progress=lambda _: None)
    assert result.bit_exact, result.mismatches[:3]
    assert result.tensors is not None and result.tensors.identical, result.tensors.summary()


def test_mul_multiplier_is_computed_in_float_as_litert_does(tmp_path, keras):
    """LiteRT's mul.cc Prepare evaluates `scale1 * scale2 / scale_out` on C floats. With these scales the float
    and the double quotient quantize to different multipliers that differ on 2 of the 65,536 input pairs: LiteRT
    gives the float one, and so do we (every pair: an input vector of one value against a constant of all 256)."""
    import tflite_edit as te

    from toolchain.compiler import quant as q
    from toolchain.compiler.ops.dsp.add import rdbp, srdhm
    from toolchain.verify.reference import reference_model

    (s1, s2, so), (z1, z2, zo) = (0.0015328192384913564, 0.014371993020176888, 0.002480104099959135), (60, 78, 116)
    inputs = keras.Input((256,), name="input")
    const = np.linspace(-1, 1, 256).astype(np.float32)
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * const, name="mul")(inputs))
    tflite = convert(model, om.representative((256,)), tmp_path / "mul.tflite")

    def change(m):
        op = te.operator(m, "MUL")
        for tid, scale, zp in zip((*op.inputs, op.outputs[0]), (s1, s2, so), (z1, z2, zo)):
            t = te.tensor(m, tid)
            t.quantization.scale, t.quantization.zeroPoint = [scale], [zp]
            if m.buffers[t.buffer].data is not None and len(m.buffers[t.buffer].data):
                m.buffers[t.buffer].data = np.arange(-128, 128, dtype=np.int8).view(np.uint8)

    tflite.write_bytes(te.edit(tflite.read_bytes(), change))
    samples = [[np.full((1, 256), v, np.int8)] for v in range(-128, 128)]
    compile_model(tflite, tmp_path / "out")
    from toolchain.verify.check import check_against_reference

    report = check_against_reference(tflite, tmp_path / "out", inputs=samples)
    assert report.ok, report.summary()
    ref = reference_model(tflite, "litert")
    litert = np.stack([ref.run(xs)[0].reshape(-1) for xs in samples]).astype(np.int64)
    grid = np.arange(-128, 128, dtype=np.int64)
    product = (grid[:, None] - z1) * (grid[None, :] - z2)
    m, s = q.quantize_multiplier(s1 * s2 / so)  # in double
    double = np.clip(rdbp(srdhm(product, m), -s) + zo, -128, 127)
    assert int((litert != double).sum()) == 2


# -- the shared broadcast walk in C (tm_binary.h) -------------------------------------------------------------

@pytest.fixture(scope="module")
def maximum_lib(tmp_path_factory):
    import ctypes
    import subprocess

    from toolchain.compiler.driver import FIRMWARE_DIR, KERNEL_INCLUDE

    if shutil.which("gcc") is None:
        pytest.skip("gcc not found")
    lib = tmp_path_factory.mktemp("maximum") / "libmaximum.so"
    cmd = ["gcc", "-std=c99", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror", f"-I{KERNEL_INCLUDE}",
           str(FIRMWARE_DIR / "kernels" / "ref" / "tm_maximum_s8.c"), "-o", str(lib)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return ctypes.CDLL(str(lib))


def test_walk_in_c_gathers_by_any_stride_and_refuses_reads_out_of_bounds(maximum_lib):
    """Every inner-run case (both contiguous, either a single value, any other stride), against a NumPy gather."""
    import ctypes

    class Dims(ctypes.Structure):
        _fields_ = [(f, ctypes.c_int32) for f in "nhwc"]

    class Broadcast(ctypes.Structure):
        _fields_ = [("input1_stride", Dims), ("input2_stride", Dims)]

    class Params(ctypes.Structure):
        _fields_ = [("min", ctypes.c_int32), ("max", ctypes.c_int32)]

    ptr = ctypes.POINTER(ctypes.c_int8)
    rng = np.random.default_rng(2)
    params = Params(-100, 90)

    def run(out, strides, a, b):
        got = np.zeros(int(np.prod(out)), np.int8)
        status = maximum_lib.tm_maximum_s8(
            None, ctypes.byref(params), ctypes.byref(Broadcast(Dims(*strides[0]), Dims(*strides[1]))),
            ctypes.byref(Dims(*out)), a.ctypes.data_as(ptr), ctypes.byref(Dims(*out)), b.ctypes.data_as(ptr),
            ctypes.byref(Dims(*out)), got.ctypes.data_as(ptr))
        return status, got

    checked = 0
    while checked < 40:
        inner = [(1, 1), (0, 1), (1, 0), (2, 0), (0, 0)][checked % 5]
        out = tuple(int(d) for d in rng.integers(1, 5, 4))
        strides = [[int(x) for x in rng.integers(0, 5, 3)] + [step] for step in inner]
        size = int(np.prod(out))
        if any(sum((o - 1) * s for o, s in zip(out, st)) >= size for st in strides):
            continue  # would read past the input: see below
        a, b = (rng.integers(-128, 128, size).astype(np.int8) for _ in range(2))
        status, got = run(out, strides, a, b)
        assert status == 0
        idx = np.indices(out).reshape(4, -1).T
        want = np.clip(np.maximum(a[idx @ strides[0]], b[idx @ strides[1]]), -100, 90)
        np.testing.assert_array_equal(got, want, err_msg=str((inner, out, strides)))
        checked += 1
    a = np.full(8, 5, np.int8)  # any write would show
    status, got = run((1, 2, 2, 2), [[0, 4, 2, 1], [0, 4, 2, 2]], a, a)  # the last element would be a[9]
    assert status == -1 and not got.any()
