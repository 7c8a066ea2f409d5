"""`--kernels cmsis-nn`: the same plan, with Arm's CMSIS-NN kernels where CMSIS-NN has one.

CMSIS-NN (github.com/ARM-software/CMSIS-NN) is never vendored or downloaded by this toolchain: the user points
CMSIS_NN_ROOT at a checkout, the compile records it (`cmsis_nn.json` beside model_plan.json) and the firmware build
compiles its int8 sources from there. Per op kind, a `CmsisKernel` says whether CMSIS-NN covers the op (`applies`),
mirrors its `_get_buffer_size` (`scratch_bytes`) and writes the call with CMSIS-NN's own structs as designated
initialisers (`emit`); every other op (PAD, MEAN, STRIDED_SLICE, ...) keeps calling our portable kernel.

CMSIS-NN reproduces tflite-micro, so a cmsis-nn compile reproduces the `tflm` reference (its FULLY_CONNECTED
requantizes with TFLite's classic double rounding, the ops our portable kernels keep are emitted for `tflm` too).

Scratch sizes: CMSIS-NN's `_get_buffer_size` depends on the core it is compiled for (plain C, DSP, MVE) and the
compile does not know the board, so each op gets the larger of CMSIS-NN's `_dsp` and `_mve` sizes (the plain-C
size is never larger than the DSP one). FULLY_CONNECTED's buffer on MVE holds the per-row kernel sums (bias + input
offset * row sum) that tflite-micro computes once with `arm_vector_sum_s8`: here they are computed at compile time
into flash, so that layer needs no arena.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np

from toolchain.compiler import quant as q
from toolchain.compiler.ir import Graph, Op
from toolchain.compiler.ops import OPS
from toolchain.compiler.ops.add import LEFT_SHIFT
from toolchain.compiler.ops.add import _rescales as add_rescales
from toolchain.compiler.ops.base import activation, bias_id, per_channel_multipliers, window_geometry
from toolchain.compiler.ops.params import Activation, Tile, designated
from toolchain.compiler.ops.softmax import SCALED_DIFF_INTEGER_BITS
from toolchain.compiler.planner import align
from toolchain.errors import ToolchainError
from toolchain.registry import Registry

if TYPE_CHECKING:
    from toolchain.compiler.codegen import Emitter

TARGET = "cmsis-nn"
ENV = "CMSIS_NN_ROOT"
CHECKOUT_FILE = "cmsis_nn.json"  # in the compile output: which checkout the firmware build compiles
HEADERS = ("arm_nnfunctions.h",)  # what model.c includes after tm_nn.h
# The files of a checkout this toolchain relies on: the API, and the source of every function it calls.
REQUIRED_FILES = (
    "Include/arm_nnfunctions.h", "Include/arm_nn_types.h", "Include/arm_nnsupportfunctions.h",
    "Source/ConvolutionFunctions/arm_convolve_wrapper_s8.c",
    "Source/ConvolutionFunctions/arm_depthwise_conv_wrapper_s8.c",
    "Source/FullyConnectedFunctions/arm_fully_connected_s8.c",
    "Source/FullyConnectedFunctions/arm_fully_connected_per_channel_s8.c",
    "Source/PoolingFunctions/arm_avgpool_s8.c", "Source/PoolingFunctions/arm_max_pool_s8.c",
    "Source/BasicMathFunctions/arm_elementwise_add_s8.c", "Source/SoftmaxFunctions/arm_softmax_s8.c",
)
MISSING_HINT = f"set {ENV}=<a CMSIS-NN checkout> (github.com/ARM-software/CMSIS-NN); it is never downloaded by this " \
               "toolchain"


# -- the user's checkout ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CmsisCheckout:
    """The CMSIS-NN checkout a compile used: where it is, and which commit / pack version (None: not known)."""
    root: Path
    commit: str | None
    version: str | None

    def to_json(self) -> str:
        return json.dumps({"root": str(self.root), "commit": self.commit, "version": self.version}, indent=2) + "\n"

    @classmethod
    def load(cls, model_dir: Path | str) -> CmsisCheckout:
        path = Path(model_dir) / CHECKOUT_FILE
        try:
            d = json.loads(path.read_text())
            return cls(Path(d["root"]), d.get("commit"), d.get("version"))
        except FileNotFoundError:
            raise ToolchainError(f"{model_dir} was compiled for the cmsis-nn kernels but has no {CHECKOUT_FILE}",
                                 "compile it again with --kernels cmsis-nn") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ToolchainError(f"{path} is not a CMSIS-NN record this toolchain wrote ({exc})",
                                 "compile it again with --kernels cmsis-nn") from exc


def check_layout(root: Path) -> None:
    """A one-line error naming the first file of REQUIRED_FILES the checkout lacks."""
    if not root.is_dir():
        raise ToolchainError(f"{ENV}={root} is not a directory", MISSING_HINT)
    for rel in REQUIRED_FILES:
        if not (root / rel).is_file():
            raise ToolchainError(f"{ENV}={root} is not a CMSIS-NN checkout: it has no {rel}", MISSING_HINT)


def find_checkout(environ: Mapping[str, str] | None = None) -> CmsisCheckout:
    """The checkout CMSIS_NN_ROOT names, checked; a ToolchainError (nothing written) when unset or incomplete."""
    value = (os.environ if environ is None else environ).get(ENV, "")
    if not value:
        raise ToolchainError(f"--kernels cmsis-nn needs {ENV}=<a CMSIS-NN checkout> "
                             "(github.com/ARM-software/CMSIS-NN); it is never downloaded by this toolchain")
    root = Path(value).expanduser().resolve()
    check_layout(root)
    return CmsisCheckout(root, git_commit(root), pack_version(root))


def git_commit(root: Path) -> str | None:
    if not (root / ".git").exists():
        return None
    try:
        proc = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def pack_version(root: Path) -> str | None:
    """The newest release named in the CMSIS pack description (ARM.CMSIS-NN.pdsc), if any."""
    pdsc = root / "ARM.CMSIS-NN.pdsc"
    if not pdsc.is_file():
        return None
    m = re.search(r'<release\s+version="([^"]+)"', pdsc.read_text(errors="replace"))
    return m.group(1) if m else None


# -- CMSIS-NN's structs, as designated initialisers ----------------------------------------------------------

def init(**fields) -> str:
    """`{ .a = ..., ... }`: a str is C as is, a dataclass renders field by field (params.designated)."""
    return "{ " + ", ".join(f".{k} = {v if isinstance(v, str) else designated(v)}" for k, v in fields.items()) + " }"


def dims(em: "Emitter", n: int, h: int, w: int, c: int) -> str:
    return "&" + em.static("cmsis_nn_dims", "cmsis_dims", init(n=str(n), h=str(h), w=str(w), c=str(c)))


def context(em: "Emitter", buf: str = "NULL", size: int = 0) -> str:
    """A cmsis_nn_context: the op's scratch buffer in the arena as the planner placed it (NULL when none: some
    kernels take a non-NULL buffer as a request for their buffered variant)."""
    scratch = em.plan.scratch.get(em.op_index)
    if scratch is not None and buf == "NULL":
        buf, size = em.scratch_ptr(em.op_index), scratch.size
    return "&" + em.static("cmsis_nn_context", "cmsis_ctx", init(buf=buf, size=str(size)))


def per_channel_quant(em: "Emitter", multipliers, shifts) -> str:
    """cmsis_nn_per_channel_quant_params: CMSIS-NN's convention is ours (TFLite QuantizeMultiplier: Q31
    multiplier, shift > 0 left). Its pointers are not const; the kernels only read them."""
    mult = em.array("int32_t", multipliers, "cmsis_mult")
    shift = em.array("int32_t", shifts, "cmsis_shift")
    return "&" + em.static("cmsis_nn_per_channel_quant_params", "cmsis_quant",
                           init(multiplier=f"(int32_t *){mult}", shift=f"(int32_t *){shift}"))


def bias_ptr(op: Op, em: "Emitter", channels: int) -> str:
    """The int32 bias (zeros when the layer has none: not every CMSIS-NN kernel accepts NULL)."""
    bias = bias_id(op, 2)
    if bias is not None:
        return em.ptr(bias, "int32_t")
    return em.weights("int32_t", [0] * channels, "cmsis_zero_bias", "no bias in the model")


def status(call: str) -> str:
    """A CMSIS-NN call as a tm_status (ARM_CMSIS_NN_SUCCESS is 0 like TM_OK; its errors are negative)."""
    return f"(tm_status){call}"


# -- the kernels -----------------------------------------------------------------------------------------------

class CmsisKernel:
    """One op kind's CMSIS-NN kernel."""

    function = ""

    def applies(self, op: Op, g: Graph) -> bool:
        return True

    def scratch_bytes(self, op: Op, g: Graph) -> int:
        """max(`_get_buffer_size_dsp`, `_get_buffer_size_mve`) of CMSIS-NN for this op."""
        return 0

    def emit(self, op: Op, g: Graph, em: "Emitter") -> str:
        raise NotImplementedError


KERNELS: Registry[CmsisKernel] = Registry("CMSIS-NN kernel")


def register(kind: str):
    def decorator(cls: type[CmsisKernel]) -> type[CmsisKernel]:
        assert kind in OPS, f"CMSIS-NN kernel for unknown op {kind}"
        KERNELS.register(kind)(cls())
        return cls

    return decorator


def conv_geometry(op: Op, g: Graph, kh: int, kw: int) -> dict:
    geo = window_geometry(op, g, kh, kw)
    return {"stride": Tile(*geo["stride"]), "padding": Tile(*geo["pad"]), "dilation": Tile(*geo["dilation"])}


def conv_buffer_dsp(inp, filt, geo: dict) -> int:
    """arm_convolve_wrapper_s8_get_buffer_size_dsp (GCC: the 1x1 fast kernel takes no buffer)."""
    if is_1x1(inp, filt, geo):
        return 0
    rhs_cols = filt[1] * filt[2] * inp[3]
    return 2 * align(rhs_cols, 4) * 2  # im2col of two columns, int16


def conv_buffer_mve(inp, filt, out, geo: dict) -> int:
    """arm_convolve_wrapper_s8_get_buffer_size_mve."""
    if is_1x1(inp, filt, geo):
        return 0
    general = 4 * align(inp[3] * filt[1] * filt[2], 16)  # four im2col rows of whole Q registers
    if not is_1_x_n(inp, filt, geo):
        return general
    stride_x, pad_x, kernel_x, out_x = geo["stride"].w, geo["padding"].w, filt[2], out[2]
    total = (out_x - 1) * stride_x + kernel_x - inp[2]
    asym = total - 2 * int(total / 2)  # C's %: the sign of the dividend
    right = max(1, (pad_x + asym + stride_x - 1) // stride_x) if pad_x + asym else 0
    left = max(1, (pad_x + stride_x - 1) // stride_x) if pad_x else 0
    if right + max(out_x - (right + left), 0) + left != out_x:
        return general
    pad_left = pad_x * inp[3]
    pad_right = right * inp[3] if asym else pad_left
    elems_left = kernel_x * inp[3]
    return max(elems_left + pad_left, elems_left - inp[3] + pad_right)


def is_1x1(inp, filt, geo: dict) -> bool:
    """arm_nn_is_convolve_1x1."""
    return (geo["padding"] == Tile(0, 0) and filt[1] == filt[2] == 1 and geo["dilation"] == Tile(1, 1)
            and inp[3] == filt[3])


def is_1_x_n(inp, filt, geo: dict) -> bool:
    """arm_nn_is_convolve_1_x_n."""
    return (inp[1] == 1 and geo["dilation"].w == 1 and filt[1] == 1 and (geo["stride"].w * inp[3]) % 4 == 0
            and inp[3] == filt[3])


@register("CONV_2D")
class Conv2D(CmsisKernel):
    function = "arm_convolve_wrapper_s8"

    def shapes(self, op, g):
        return (g.tensors[op.inputs[0]].nhwc(), g.tensors[op.inputs[1]].nhwc(), g.tensors[op.outputs[0]].nhwc())

    def scratch_bytes(self, op, g):
        inp, filt, out = self.shapes(op, g)
        geo = conv_geometry(op, g, filt[1], filt[2])
        return max(conv_buffer_dsp(inp, filt, geo), conv_buffer_mve(inp, filt, out, geo))

    def emit(self, op, g, em):
        inp_t, w_t, out_t = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
        inp, filt, out = self.shapes(op, g)
        params = em.static("cmsis_nn_conv_params", "cmsis_conv", init(
            input_offset=str(-inp_t.zero_point), output_offset=str(out_t.zero_point),
            **conv_geometry(op, g, filt[1], filt[2]), activation=Activation(*activation(op, out_t))))
        quant = per_channel_quant(em, *per_channel_multipliers(inp_t, w_t, out_t, filt[0]))
        return status(f"{self.function}({context(em)}, &{params}, {quant}, {dims(em, *inp)}, {em.ptr(op.inputs[0])}, "
                      f"{dims(em, *filt)}, {em.ptr(op.inputs[1])}, {dims(em, 1, 1, 1, filt[0])}, "
                      f"{bias_ptr(op, em, filt[0])}, {dims(em, *out)}, {em.ptr(op.outputs[0])})")


@register("DEPTHWISE_CONV_2D")
class DepthwiseConv2D(CmsisKernel):
    function = "arm_depthwise_conv_wrapper_s8"

    def shapes(self, op, g):
        return (g.tensors[op.inputs[0]].nhwc(), g.tensors[op.inputs[1]].nhwc(), g.tensors[op.outputs[0]].nhwc())

    def scratch_bytes(self, op, g):
        """arm_depthwise_conv_wrapper_s8_get_buffer_size_dsp / _mve."""
        inp, filt, out = self.shapes(op, g)
        geo = conv_geometry(op, g, filt[1], filt[2])
        opt = inp[3] == out[3] and inp[0] == 1 and geo["dilation"] == Tile(1, 1)
        three_by_three = filt[1] == filt[2] == 3 and geo["padding"].h <= 1 and geo["padding"].w <= 1
        dsp = inp[3] * filt[1] * filt[2] * 2 if opt and not three_by_three else 0
        mve = 4 * 124 * filt[1] * filt[2] if opt else 0  # CH_IN_BLOCK_MVE input channels at a time
        if inp[3] == 1 and out[3] > 1:  # MVE (GCC): a one-channel input becomes a CONV_2D
            as_conv = (out[3], filt[1], filt[2], 1)
            mve = max(mve, conv_buffer_mve(inp, as_conv, out, geo) + filt[1] * filt[2] * out[3])
        return max(dsp, mve)

    def emit(self, op, g, em):
        inp_t, w_t, out_t = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
        inp, filt, out = self.shapes(op, g)
        params = em.static("cmsis_nn_dw_conv_params", "cmsis_dwconv", init(
            input_offset=str(-inp_t.zero_point), output_offset=str(out_t.zero_point), ch_mult=str(out[3] // inp[3]),
            **conv_geometry(op, g, filt[1], filt[2]), activation=Activation(*activation(op, out_t))))
        quant = per_channel_quant(em, *per_channel_multipliers(inp_t, w_t, out_t, filt[3]))
        return status(f"{self.function}({context(em)}, &{params}, {quant}, {dims(em, *inp)}, {em.ptr(op.inputs[0])}, "
                      f"{dims(em, *filt)}, {em.ptr(op.inputs[1])}, {dims(em, 1, 1, 1, filt[3])}, "
                      f"{bias_ptr(op, em, filt[3])}, {dims(em, *out)}, {em.ptr(op.outputs[0])})")


@register("FULLY_CONNECTED")
class FullyConnected(CmsisKernel):
    """arm_fully_connected_s8 (one multiplier) or arm_fully_connected_per_channel_s8. The multipliers are TFLite's
    (QuantizeMultiplier of s_in * s_w / s_out, in double), applied with CMSIS-NN's double rounding."""

    def emit(self, op, g, em):
        inp_t, w_t, out_t = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
        units, depth = w_t.shape
        batches = inp_t.size // depth
        multipliers, shifts = per_channel_multipliers(inp_t, w_t, out_t, units)
        params = em.static("cmsis_nn_fc_params", "cmsis_fc", init(
            input_offset=str(-inp_t.zero_point), filter_offset="0", output_offset=str(out_t.zero_point),
            activation=Activation(*activation(op, out_t))))
        if len(set(zip(multipliers, shifts))) == 1:
            function = "arm_fully_connected_s8"
            quant = "&" + em.static("cmsis_nn_per_tensor_quant_params", "cmsis_quant",
                                    init(multiplier=str(multipliers[0]), shift=str(shifts[0])))
        else:
            function = "arm_fully_connected_per_channel_s8"
            quant = per_channel_quant(em, multipliers, shifts)
        # The kernel sums (MVE reads them; the DSP and C kernels ignore them), computed here once.
        weights = w_t.data.astype(np.int64).reshape(units, depth)
        bias = bias_id(op, 2)
        sums = weights.sum(axis=1) * -inp_t.zero_point
        if bias is not None:
            sums = sums + g.tensors[bias].data.astype(np.int64)
        sums = ((sums + (1 << 31)) % (1 << 32)) - (1 << 31)  # int32 wrap-around, as arm_vector_sum_s8
        ksum = em.weights("int32_t", sums, "cmsis_kernel_sum", "bias + input offset * row sum (arm_vector_sum_s8)")
        ctx = context(em, f"(void *){ksum}", 4 * units)
        return status(f"{function}({ctx}, &{params}, {quant}, {dims(em, batches, 1, 1, depth)}, "
                      f"{em.ptr(op.inputs[0])}, {dims(em, depth, 1, 1, units)}, {em.ptr(op.inputs[1])}, "
                      f"{dims(em, 1, 1, 1, units)}, {bias_ptr(op, em, units)}, {dims(em, batches, 1, 1, units)}, "
                      f"{em.ptr(op.outputs[0])})")


class Pool2D(CmsisKernel):
    def emit(self, op, g, em):
        inp, out = g.tensors[op.inputs[0]].nhwc(), g.tensors[op.outputs[0]].nhwc()
        kh, kw = op.options["filterHeight"], op.options["filterWidth"]
        geo = window_geometry(op, g, kh, kw)
        params = em.static("cmsis_nn_pool_params", "cmsis_pool", init(
            stride=Tile(*geo["stride"]), padding=Tile(*geo["pad"]),
            activation=Activation(*activation(op, g.tensors[op.outputs[0]]))))
        return status(f"{self.function}({context(em)}, &{params}, {dims(em, *inp)}, {em.ptr(op.inputs[0])}, "
                      f"{dims(em, 1, kh, kw, 1)}, {dims(em, *out)}, {em.ptr(op.outputs[0])})")


@register("AVERAGE_POOL_2D")
class AvgPool2D(Pool2D):
    function = "arm_avgpool_s8"

    def scratch_bytes(self, op, g):
        """arm_avgpool_s8_get_buffer_size_dsp (one int32 sum per channel; MVE: none)."""
        return 4 * g.tensors[op.inputs[0]].nhwc()[3]


@register("MAX_POOL_2D")
class MaxPool2D(Pool2D):
    function = "arm_max_pool_s8"


@register("ADD")
class Add(CmsisKernel):
    """arm_elementwise_add_s8: TFLite's int8 ADD (both inputs to twice the larger scale, 20 bits of headroom)."""

    def applies(self, op, g):
        """Inputs of the output's size only: a broadcasting ADD keeps our portable kernel."""
        return len({g.tensors[t].size for t in (*op.inputs[:2], op.outputs[0])}) == 1

    def emit(self, op, g, em):
        a, b, out = (g.tensors[t] for t in (*op.inputs[:2], op.outputs[0]))
        (m1, s1), (m2, s2), (mo, so) = (q.quantize_multiplier(r) for r in add_rescales(a, b, out))
        lo, hi = activation(op, out)
        return status(f"arm_elementwise_add_s8({em.ptr(a.id)}, {em.ptr(b.id)}, {-a.zero_point}, {m1}, {s1}, "
                      f"{-b.zero_point}, {m2}, {s2}, {LEFT_SHIFT}, {em.ptr(out.id)}, {out.zero_point}, {mo}, {so}, "
                      f"{lo}, {hi}, {out.size})")


@register("SOFTMAX")
class Softmax(CmsisKernel):
    """arm_softmax_s8 along the innermost axis (it returns nothing: the call is a comma expression)."""

    def emit(self, op, g, em):
        inp = g.tensors[op.inputs[0]]
        beta = q.f32(op.options.get("beta", 1.0))
        multiplier, left_shift = q.preprocess_softmax_scaling(beta, inp.scale, SCALED_DIFF_INTEGER_BITS)
        diff_min = -q.calculate_input_radius(SCALED_DIFF_INTEGER_BITS, left_shift)
        depth = inp.shape[-1] if inp.shape else 1
        return (f"(arm_softmax_s8({em.ptr(op.inputs[0])}, {inp.size // depth}, {depth}, {multiplier}, {left_shift}, "
                f"{diff_min}, {em.ptr(op.outputs[0])}), TM_OK)")


# -- what the compiler asks ------------------------------------------------------------------------------------

def kernel_for(op: Op, g: Graph) -> CmsisKernel | None:
    """The CMSIS-NN kernel of `op`; None: our portable kernel."""
    k = KERNELS.get(op.kind)
    return k if k is not None and k.applies(op, g) else None


def scratch_requirements(g: Graph) -> dict[int, int]:
    """Op index -> scratch bytes, for the planner: CMSIS-NN's buffer sizes, our portable kernels' elsewhere."""
    sizes = {}
    for i, op in enumerate(g.ops):
        k = kernel_for(op, g)
        sizes[i] = k.scratch_bytes(op, g) if k else OPS.get(op.kind).scratch_bytes(op, g)
    return sizes


def emit(op: Op, g: Graph, em: "Emitter") -> str:
    """The layer's call: CMSIS-NN's kernel, or our portable kernel (for the tflm reference)."""
    k = kernel_for(op, g)
    return k.emit(op, g, em) if k else OPS.get(op.kind).emit(op, g, em)

