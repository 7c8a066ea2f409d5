"""The kernel API: one name per op from ops/<op>.py to tm_<op>_s8.c to tm_<op>_s8, a _get_buffer_size
companion that the compiler's scratch_bytes mirrors, a scratch path the planner really allocates, and
parameter structs emitted as designated initialisers."""
from __future__ import annotations

import ctypes
import inspect
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import op_models as om
from conftest import compile_and_check, convert
from toolchain.compiler.driver import FIRMWARE_DIR, KERNEL_INCLUDE, kernel_sources
from toolchain.compiler.frontend import load_tflite
from toolchain.compiler.ops import OPS
from toolchain.compiler.ops.conv2d import Conv2D
from toolchain.compiler.ops.params import Activation, Conv2DParams, Symbol, Tile, designated
from toolchain.compiler.passes import optimize

REF = FIRMWARE_DIR / "kernels" / "ref"


class Dims(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


@pytest.fixture(scope="module")
def kernels(tmp_path_factory) -> ctypes.CDLL:
    """The portable kernels, built for the host as the generated model's kernels are (hostrun)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found")
    lib = tmp_path_factory.mktemp("kernels") / "libtm_kernels.so"
    sources = [str(p) for p in kernel_sources("ref") if p.suffix == ".c"]
    cmd = ["gcc", "-std=c99", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror", f"-I{KERNEL_INCLUDE}",
           *sources, "-o", str(lib), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return ctypes.CDLL(str(lib))


def c_buffer_size(lib: ctypes.CDLL, kernel: str, dims) -> int:
    fn = getattr(lib, f"{kernel}_get_buffer_size")
    fn.restype = ctypes.c_int32
    fn.argtypes = [ctypes.POINTER(Dims)] * len(dims)
    return fn(*(ctypes.byref(Dims(*d)) for d in dims))


SHAPES = {
    "conv_same": (om.conv2d, {}),
    "conv_valid_stride2": (om.conv2d, {"padding": "valid", "strides": 2, "filters": 5}),
    "depthwise": (om.depthwise, {}),
    "dense": (om.dense, {}),
    "dense_wide": (om.dense, {"units": 33, "input_shape": (70,)}),
    "avgpool": (om.avgpool, {}),
    "maxpool_same": (om.maxpool, {"pool": 3, "strides": 2, "padding": "same"}),
    "mean": (om.mean, {}),
    "add": (om.add, {}),
    "softmax": (om.softmax, {}),
    "pad": (om.zero_padding, {"after": "maxpool"}),
    "concatenation": (om.concatenation, {}),
    "relu": (om.relu_standalone, {}),
}


@pytest.mark.parametrize("case", SHAPES)
def test_get_buffer_size_matches_scratch_bytes(case, kernels, tmp_path, keras):
    builder, kwargs = SHAPES[case]
    model = builder(**kwargs)
    tflite = convert(model, om.representative(model.input_shape[1:]), tmp_path / "m.tflite")
    g = optimize(load_tflite(tflite))
    checked = 0
    for op in g.ops:
        opdef = OPS.get(op.kind)
        if opdef.aliases_output:
            continue
        dims = opdef.kernel_dims(op, g)
        assert c_buffer_size(kernels, opdef.kernel_for(op, g), dims) == opdef.scratch_bytes(op, g), op.kind
        checked += 1
    assert checked


def kernel_ops():
    return [(name, opdef) for name, opdef in OPS.items() if not opdef.aliases_output]


@pytest.mark.parametrize("name,opdef", kernel_ops(), ids=[name for name, _ in kernel_ops()])
def test_one_name_from_module_to_file_to_symbol(name, opdef):
    module = Path(inspect.getfile(type(opdef))).stem
    assert opdef.kernel == f"tm_{module}_s8", name
    source = (REF / f"{opdef.kernel}.c").read_text()
    header = (KERNEL_INCLUDE / "tm_nn.h").read_text()
    kernels = set(re.findall(rf"^tm_status ({opdef.kernel}\w*)\(", source, re.M))
    assert opdef.kernel in kernels
    for kernel in kernels:  # the kernel and its variants: the uniform API and a companion each
        assert re.search(rf"{kernel}\(const tm_context \*ctx, const tm_\w+_params \*params,", header), kernel
        assert re.search(rf"^int32_t {kernel}_get_buffer_size\(", source, re.M), kernel
    if opdef.kernel_s16:  # its int16-activation kernel: the same rules, in tm_<module>_s16.c
        assert opdef.kernel_s16 == f"tm_{module}_s16", name
        source = (REF / f"{opdef.kernel_s16}.c").read_text()
        assert re.search(rf"^tm_status {opdef.kernel_s16}\(", source, re.M), name
        assert re.search(rf"{opdef.kernel_s16}\(const tm_context \*ctx, const tm_\w+_params \*params,", header), name
        assert re.search(rf"^int32_t {opdef.kernel_s16}_get_buffer_size\(", source, re.M), name


def test_every_kernel_file_belongs_to_an_op():
    kernels = {k for _, opdef in kernel_ops() for k in (opdef.kernel, opdef.kernel_s16) if k}
    helpers = {"tm_support", "tm_max_s8"}  # shared checks and fixed point; the exit check's maximum
    assert {p.stem for p in REF.glob("*.c")} == kernels | helpers


def test_no_kernel_keeps_its_own_copy_of_a_shared_helper():
    shared = re.findall(r"static inline \w+ (\w+)\(", (KERNEL_INCLUDE / "tm_support.h").read_text())
    assert "tm_dims_ok" in shared and "tm_quant_ok" in shared and "tm_clamp" in shared
    for src in REF.glob("*.c"):
        text = src.read_text()
        for name in ("dims_ok", "quant_ok", "clamp", "activation_ok", "window"):
            assert not re.search(rf"^static \w+ {name}\(", text, re.M), f"{src.name} defines its own {name}"


def test_scratch_is_planned_in_the_arena_and_passed_in_the_context(tmp_path, keras, monkeypatch):
    """A kernel that asks for scratch gets it: the planner places it in the arena for the op's lifetime,
    the call's tm_context points at it, and the model stays bit-exact (the layer as one call: no row bands)."""
    monkeypatch.setattr(Conv2D, "scratch_bytes", lambda self, op, g: 100)
    model = om.conv2d()
    tflite = convert(model, om.representative(model.input_shape[1:]), tmp_path / "m.tflite")
    result = compile_and_check(tflite, tmp_path / "out", samples=2, bands="none")
    plan = json.loads((tmp_path / "out" / "model_plan.json").read_text())
    scratch = [t for t in plan["tensors"] if t["id"] is None]
    assert [t["bytes"] for t in scratch] == [100]
    assert scratch[0]["offset"] + 100 <= result.arena_bytes
    model_c = (tmp_path / "out" / "model.c").read_text()
    ctx = re.search(r"static const tm_context (\w+) = \{ \.buf = tm_arena \+ (\d+), \.size = 100 \};", model_c)
    assert ctx and int(ctx.group(2)) == scratch[0]["offset"]
    assert re.search(rf"tm_conv2d_s8\(&{ctx.group(1)}, ", model_c)


def test_params_render_as_designated_initialisers():
    params = Conv2DParams(input_offset=128, output_offset=-5, stride=Tile(2, 1), padding=Tile(0, 1),
                          dilation=Tile(1, 1), activation=Activation(-128, 127))
    assert designated(params) == (
        "{ .input_offset = 128, .output_offset = -5, .stride = { .h = 2, .w = 1 }, .padding = { .h = 0, .w = 1 }, "
        ".dilation = { .h = 1, .w = 1 }, .activation = { .min = -128, .max = 127 } }")
    with pytest.raises(ValueError):
        Symbol("x; } evil")
