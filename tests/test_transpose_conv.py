"""TRANSPOSE_CONV (Keras Conv2DTranspose / Conv1DTranspose): bit-exact with LiteRT BUILTIN_REF for strides 1-3,
kernels 1-5, SAME and VALID, output_padding, 1/3/8/odd channels, per-channel and per-tensor weights, with and
without bias, with a fused activation, on the portable and the dsp kernel (its C on the host, and the two kernels
equal on random geometry); MACs counted as the kernel computes them; never run in place; an output shape known only
at run time, or one that does not fit the input, refused before anything is written; and the Cortex-M4
(mps2-an386) runs an encoder-decoder bit-exactly on both paths."""
from __future__ import annotations

import ctypes
import json
import shutil
import subprocess

import numpy as np
import pytest

import op_models as om
import tflite_edit as te
from conftest import compile_and_check, convert
from toolchain.compiler import compile_model
from toolchain.compiler.frontend import load_tflite
from toolchain.errors import ToolchainError

# id -> (input shape, filters, kernel, strides, padding, output_padding, bias, per-channel weights)
CASES = {
    "k3_s2_same": ((5, 6, 3), 4, 3, 2, "same", None, True, True),
    "k3_s2_valid_output_padding": ((5, 6, 3), 5, 3, 2, "valid", 1, True, True),
    "k4_s3_same_c8": ((4, 4, 8), 3, 4, 3, "same", None, True, True),
    "k1_s1_c1": ((3, 5, 1), 1, 1, 1, "valid", None, True, True),
    "k5_s1_same_no_bias": ((6, 5, 3), 8, 5, 1, "same", None, False, True),
    "k2_s2_valid_per_tensor_odd": ((4, 4, 7), 5, 2, 2, "valid", None, True, False),
    "k5x3_s2x3_same_output_padding": ((4, 3, 3), 7, (5, 3), (2, 3), "same", (1, 2), True, True),
    "k3_s3_same_per_tensor_no_bias": ((3, 4, 5), 9, 3, 3, "same", None, False, False),
    "k2_s1_valid_c8": ((5, 5, 8), 8, 2, 1, "valid", None, True, True),
}


def tconv_model(keras, input_shape, filters, kernel, strides, padding, output_padding=None, bias=True, seed=0):
    """One Conv2DTranspose on a fixed batch of 1 (an unknown batch makes the converter compute the output
    shape at run time)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape, batch_size=1, name="input")
    layer = keras.layers.Conv2DTranspose(filters, kernel, strides=strides, padding=padding,
                                         output_padding=output_padding, use_bias=bias,
                                         bias_initializer=keras.initializers.RandomUniform(-0.3, 0.3),
                                         name="tconv")
    return keras.Model(inputs, layer(inputs))


def the_op(tflite):
    g = load_tflite(tflite)
    ops = [op for op in g.ops if op.kind == "TRANSPOSE_CONV"]
    assert len(ops) == 1, [op.kind for op in g.ops]
    return g, ops[0]


@pytest.mark.parametrize("case", CASES)
def test_transpose_conv_is_bit_exact(keras, tmp_path, case):
    shape, filters, kernel, strides, padding, output_padding, bias, per_channel = CASES[case]
    model = tconv_model(keras, shape, filters, kernel, strides, padding, output_padding, bias)
    tflite = convert(model, om.representative(shape, n=8), tmp_path / "m.tflite", per_channel=per_channel)
    g, op = the_op(tflite)
    assert len(op.inputs) == (4 if bias else 3) and op.options["padding"] == padding.upper()
    assert g.tensors[op.inputs[1]].quant.per_channel == (per_channel and filters > 1)
    result = compile_and_check(tflite, tmp_path / "out", samples=4)
    assert [layer.op for layer in result.plan.layers] == ["TRANSPOSE_CONV"]
    compile_and_check(tflite, tmp_path / "dsp", samples=4, target="dsp")  # its C on the host (tm_simd.h in C)
    assert "tm_transpose_conv_s8_dsp(" in (tmp_path / "dsp" / "model.c").read_text()


class Tile(ctypes.Structure):
    _fields_ = [("h", ctypes.c_int32), ("w", ctypes.c_int32)]


class Clamp(ctypes.Structure):  # tm_activation
    _fields_ = [("min", ctypes.c_int32), ("max", ctypes.c_int32)]


class Params(ctypes.Structure):  # tm_transpose_conv_params
    _fields_ = [("input_offset", ctypes.c_int32), ("output_offset", ctypes.c_int32), ("stride", Tile),
                ("padding", Tile), ("activation", Clamp)]


class Quant(ctypes.Structure):  # tm_quant
    _fields_ = [("multiplier", ctypes.POINTER(ctypes.c_int32)), ("shift", ctypes.POINTER(ctypes.c_int32)),
                ("per_channel", ctypes.c_int32)]


class Context(ctypes.Structure):  # tm_context
    _fields_ = [("buf", ctypes.c_void_p), ("size", ctypes.c_int32)]


Dims = ctypes.c_int32 * 4


@pytest.fixture(scope="module")
def tconv_lib(tmp_path_factory):
    """The portable and the dsp kernel, built for the host (the dsp one with tm_simd.h's C instructions)."""
    from toolchain.compiler.driver import FIRMWARE_DIR, KERNEL_INCLUDE

    if shutil.which("gcc") is None:
        pytest.skip("gcc not found")
    lib = tmp_path_factory.mktemp("tconv") / "libtconv.so"
    sources = [FIRMWARE_DIR / "kernels" / path / "tm_transpose_conv_s8.c" for path in ("ref", "dsp")]
    proc = subprocess.run(["gcc", "-std=c99", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror",
                           f"-I{KERNEL_INCLUDE}", *map(str, sources), "-o", str(lib)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return ctypes.CDLL(str(lib))


def call(lib, kernel, params, quant, x, w, bias, out_shape, scratch=None):
    """(status, output) of one kernel call; the output starts as 0x55 bytes (a refusal must leave them)."""
    out = np.full(out_shape, 0x55, np.int8)
    ctx = Context(None, 0) if scratch is None else Context(scratch.ctypes.data, scratch.nbytes)
    status = getattr(lib, kernel)(
        ctypes.byref(ctx), ctypes.byref(params), ctypes.byref(quant),
        ctypes.byref(Dims(*x.shape)), x.ctypes.data_as(ctypes.c_void_p), ctypes.byref(Dims(*w.shape)),
        w.ctypes.data_as(ctypes.c_void_p), None if bias is None else bias.ctypes.data_as(ctypes.c_void_p),
        ctypes.byref(Dims(*out_shape)), out.ctypes.data_as(ctypes.c_void_p))
    return status, out


def test_the_dsp_kernel_equals_the_portable_one_on_random_geometry(tconv_lib):
    """Strides 1-3, kernels 1-5 (padding anywhere in [0, kernel)), 1-9 channels either side, extreme offsets:
    the dsp kernel (its C on the host) gives the portable kernel's bytes; both refuse a padding of the filter's
    size, and the dsp kernel less scratch than it asks for, leaving the output untouched."""
    from toolchain.compiler.ops.variants import VARIANTS

    rng = np.random.default_rng(7)
    size = tconv_lib.tm_transpose_conv_s8_dsp_get_buffer_size
    size.restype = ctypes.c_int32
    for _ in range(150):
        (sh, sw), (kh, kw) = rng.integers(1, 4, 2), rng.integers(1, 6, 2)
        c_in, c_out = (int(c) for c in rng.integers(1, 10, 2))
        x = rng.integers(-128, 128, (1, *rng.integers(1, 5, 2), c_in), dtype=np.int8)
        w = rng.integers(-127, 128, (c_out, kh, kw, c_in), dtype=np.int8)
        out_shape = (1, int(x.shape[1] * sh + rng.integers(0, 3)), int(x.shape[2] * sw + rng.integers(0, 3)), c_out)
        bias = rng.integers(-2**20, 2**20, c_out, dtype=np.int32) if rng.integers(2) else None
        mult = rng.integers(2**30, 2**31, c_out, dtype=np.int64).astype(np.int32)
        shift = rng.integers(-12, -5, c_out, dtype=np.int32)
        quant = Quant(mult.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
                      shift.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)), int(rng.integers(2)))
        params = Params(int(rng.choice([-127, 128, 5])), int(rng.integers(-128, 128)), Tile(sh, sw),
                        Tile(rng.integers(0, kh), rng.integers(0, kw)), Clamp(-128, int(rng.choice([127, 40]))))
        need = size(ctypes.byref(Dims(*x.shape)), ctypes.byref(Dims(*w.shape)), ctypes.byref(Dims(*out_shape)))
        assert need == VARIANTS[("TRANSPOSE_CONV", "dsp")].scratch_bytes(*_dsp_graph(x.shape, w.shape, out_shape))
        scratch = np.zeros(need, np.int8)
        status, ref = call(tconv_lib, "tm_transpose_conv_s8", params, quant, x, w, bias, out_shape)
        assert status == 0 and (ref != 0x55).any()
        status, dsp = call(tconv_lib, "tm_transpose_conv_s8_dsp", params, quant, x, w, bias, out_shape, scratch)
        assert status == 0 and np.array_equal(ref, dsp), (params.stride.h, kh, kw, c_in, c_out)
    short = np.zeros(need - 1, np.int8)
    status, out = call(tconv_lib, "tm_transpose_conv_s8_dsp", params, quant, x, w, bias, out_shape, short)
    assert status == -1 and (out == 0x55).all()
    params.padding = Tile(kh, 0)
    for kernel, given in (("tm_transpose_conv_s8", None), ("tm_transpose_conv_s8_dsp", scratch)):
        status, out = call(tconv_lib, kernel, params, quant, x, w, bias, out_shape, given)
        assert status == -1 and (out == 0x55).all()


def _dsp_graph(x_shape, w_shape, out_shape):
    """(op, graph) of a TRANSPOSE_CONV of these shapes: what the dsp variant's scratch_bytes reads."""
    from toolchain.compiler.ir import Graph, Op, Tensor

    tensors = {0: Tensor(0, "shape", (4,), "int32"), 1: Tensor(1, "w", tuple(w_shape), "int8"),
               2: Tensor(2, "x", tuple(x_shape), "int8"), 3: Tensor(3, "y", tuple(out_shape), "int8")}
    g = Graph(tensors, (Op("TRANSPOSE_CONV", (0, 1, 2), (3,)),), (2,), (3,), ("x",), ("y",))
    return g.ops[0], g


def test_conv1d_transpose_is_bit_exact(keras, tmp_path):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((7, 3), batch_size=1)
    model = keras.Model(inputs, keras.layers.Conv1DTranspose(5, 3, strides=2, padding="same")(inputs))
    tflite = convert(model, om.representative((7, 3), n=8), tmp_path / "c1.tflite")
    assert [op.kind for op in load_tflite(tflite).ops] == ["RESHAPE", "TRANSPOSE_CONV", "RESHAPE"]
    compile_and_check(tflite, tmp_path / "out", samples=4)


def fused(activation: str):
    from ai_edge_litert import schema_py_generated as schema

    def change(model):
        te.operator(model, "TRANSPOSE_CONV").builtinOptions.fusedActivationFunction = getattr(
            schema.ActivationFunctionType, activation)
    return change


@pytest.mark.parametrize("act", ["RELU", "RELU6"])
def test_a_fused_activation_clamps_as_litert_does(keras, tmp_path, act):
    """The converter keeps a ReLU after TRANSPOSE_CONV as its own op; newer models may fuse it (LiteRT applies
    TransposeConvOptions' fused activation): the same model with it fused set clamps, bit-exactly."""
    from toolchain.verify.reference import ReferenceModel

    model = tconv_model(keras, (5, 6, 3), 4, 3, 2, "same")
    plain = convert(model, om.representative((5, 6, 3), n=8), tmp_path / "plain.tflite")
    clamped = tmp_path / "fused.tflite"
    clamped.write_bytes(te.edit(plain.read_bytes(), fused(act)))
    x = np.random.default_rng(0).integers(-128, 128, (1, 5, 6, 3), dtype=np.int8)
    before, after = (ReferenceModel(p).run([x])[0] for p in (plain, clamped))
    assert (before != after).any() and after.min() > before.min()  # the activation really clamps
    compile_and_check(clamped, tmp_path / "out", samples=4)


def scattered_macs(in_hw, kernel, stride, pad, out_hw, c_in, c_out) -> int:
    """LiteRT's scatter loop, counted: every (input pixel, filter tap) whose output position is in range."""
    count = 0
    for iy in range(in_hw[0]):
        for ix in range(in_hw[1]):
            for ky in range(kernel[0]):
                for kx in range(kernel[1]):
                    oy, ox = iy * stride[0] - pad[0] + ky, ix * stride[1] - pad[1] + kx
                    count += 0 <= oy < out_hw[0] and 0 <= ox < out_hw[1]
    return count * c_in * c_out


def test_macs_and_the_plan_never_overlap_input_and_output(keras, tmp_path):
    """conv -> transpose conv -> conv: the transposed conv's MACs are the products its taps inside the output
    compute (SAME padding drops some), and its output never shares bytes with its input (it reads every input
    pixel again for later output rows)."""
    keras.utils.set_random_seed(2)
    inputs = keras.Input((6, 5, 3), batch_size=1)
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.Conv2DTranspose(6, 4, strides=2, padding="same")(x)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(x))
    tflite = convert(model, om.representative((6, 5, 3), n=8), tmp_path / "m.tflite")
    g, op = the_op(tflite)
    for target in ("ref", "dsp"):
        result = compile_and_check(tflite, tmp_path / target, samples=2, target=target)
        layer = next(layer for layer in result.plan.layers if layer.op == "TRANSPOSE_CONV")
        # 12 x 10 from 6 x 5, 4x4 filter, stride 2, SAME: LiteRT pads ((6 - 1) * 2 + 4 - 12) // 2 = 1 (and 1 for 10)
        assert layer.macs == scattered_macs((6, 5), (4, 4), (2, 2), (1, 1), (12, 10), 4, 6) < 6 * 5 * 16 * 4 * 6
        plan = json.loads((tmp_path / target / "model_plan.json").read_text())
        where = {t["id"]: (t["offset"], t["offset"] + t["bytes"]) for t in plan["tensors"] if t["id"] is not None}
        (a0, a1), (b0, b1) = where[g.root(op.inputs[2])], where[g.root(op.outputs[0])]
        assert a1 <= b0 or b1 <= a0, (target, where)


def test_an_output_shape_known_only_at_run_time_is_refused_before_writing(keras, tmp_path):
    from ai_edge_litert import schema_py_generated as schema

    def shape_as_input(model):  # the output shape becomes a second model input
        tid = te.operator(model, "TRANSPOSE_CONV").inputs[0]
        te.tensor(model, tid).buffer = 0
        te.subgraph(model).inputs = [*te.subgraph(model).inputs, tid]
        entry = schema.TensorMapT()
        entry.name, entry.tensorIndex = b"output_shape", tid
        model.signatureDefs[0].inputs.append(entry)

    good = convert(tconv_model(keras, (5, 6, 3), 4, 3, 2, "same"), om.representative((5, 6, 3), n=4),
                   tmp_path / "m.tflite")
    bad = tmp_path / "dynamic.tflite"
    bad.write_bytes(te.edit(good.read_bytes(), shape_as_input))
    with pytest.raises(ToolchainError, match=r"TRANSPOSE_CONV .*the output shape is not a constant int32 \[4\]"):
        compile_model(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_output_shape_that_does_not_fit_the_input_is_refused_before_writing(keras, tmp_path):
    """13 rows cannot come from 5 at stride 2 with SAME padding (a SAME convolution of 13 gives 7): LiteRT
    refuses it in Prepare, we before compiling."""
    def taller(model):
        op = te.operator(model, "TRANSPOSE_CONV")
        shape = te.tensor(model, op.inputs[0])
        model.buffers[shape.buffer].data = np.array([1, 13, 12, 4], np.int32).view(np.uint8)
        te.tensor(model, op.outputs[0]).shape = np.array([1, 13, 12, 4], np.int32)
        te.tensor(model, op.outputs[0]).shapeSignature = None

    good = convert(tconv_model(keras, (5, 6, 3), 4, 3, 2, "same"), om.representative((5, 6, 3), n=4),
                   tmp_path / "m.tflite")
    bad = tmp_path / "tall.tflite"
    bad.write_bytes(te.edit(good.read_bytes(), taller))
    with pytest.raises(ToolchainError, match=r"output shape \[1, 13, 12, 4\] does not fit input \[1, 5, 6, 3\] "
                                             r"and 4 3x3 filters: it must be \[1, H, W, 4\] where a SAME "
                                             r"convolution of H x W gives 5x6 \(here 7x6\)"):
        compile_model(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.emulator
@pytest.mark.skipif(not all(shutil.which(t) for t in ("cmake", "arm-none-eabi-gcc", "qemu-system-arm")),
                    reason="needs cmake, arm-none-eabi-gcc and qemu-system-arm")
@pytest.mark.parametrize("kernels", ["ref", "dsp"])
def test_an_encoder_decoder_on_the_cortex_m4(keras, tmp_path, kernels):
    """Conv2D stride 2 -> Conv2DTranspose stride 2 back to the input size -> Conv2DTranspose stride 3 (7 channels
    in, 5 out: the dsp kernel's channel tails) on mps2-an386, bit-exact on either kernel path."""
    from toolchain.boards import get_board
    from toolchain.pipeline import api

    keras.utils.set_random_seed(3)
    bias = [keras.initializers.RandomUniform(-0.3, 0.3, seed=k) for k in range(2)]
    inputs = keras.Input((8, 8, 3), batch_size=1)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2DTranspose(7, 3, strides=2, padding="same", bias_initializer=bias[0])(x)
    x = keras.layers.Conv2DTranspose(5, 5, strides=3, padding="valid", output_padding=2, bias_initializer=bias[1])(x)
    tflite = convert(keras.Model(inputs, x), om.representative((8, 8, 3), n=8), tmp_path / "ed.tflite")
    run = api.deploy(tflite, get_board("mps2-an386"), tmp_path / "run", samples=2, kernels=kernels,
                     progress=lambda _: None)
    assert run.bit_exact and [op for op, _ in run.run.layers] == ["CONV_2D", "TRANSPOSE_CONV", "TRANSPOSE_CONV"]
    kernel = "tm_transpose_conv_s8_dsp" if kernels == "dsp" else "tm_transpose_conv_s8"
    assert (tmp_path / "run" / "c" / "model.c").read_text().count(f"{kernel}(") == 2
