"""The operator interface, its registry, and checks shared by several operators."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from toolchain.compiler import quant as q
from toolchain.compiler.ir import Graph, Op, Tensor
from toolchain.compiler.ops.params import Activation, Tile
from toolchain.registry import Registry

if TYPE_CHECKING:
    from toolchain.compiler.codegen import Emitter

FUSED_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


Shape = tuple[int, int, int, int]


class OpDef:
    """How one TFLite operator is checked, counted and emitted.

    One name throughout: the module `ops/<op>.py` emits calls to `kernel` = `tm_<op>_s8` (or a
    `tm_<op>_s8_<variant>`), defined in `firmware/kernels/<path>/tm_<op>_s8.c`.
    `aliases_output` ops (RESHAPE...) produce no code: their output shares the input's storage.
    The frontend checks the arity before any `check` runs: `num_inputs` is (fewest, most or None for any),
    and only `optional_inputs` may be omitted (tensor -1).
    """

    aliases_output = False
    kernel = ""
    kernel_s16 = ""  # its int16-activation kernel `tm_<op>_s16` (in tm_<op>_s16.c), if it has one
    constraints = ""  # what the kernels cover, one line (`tinyml ops`, docs/OPS.md)
    num_inputs: tuple[int, int | None] = (1, 1)
    optional_inputs: frozenset[int] = frozenset()
    num_outputs: int | None = 1  # None: as many as its options say (SPLIT, UNPACK); its `check` holds them

    def check(self, op: Op, g: Graph) -> list[str]:
        return []

    def macs(self, op: Op, g: Graph) -> int:
        return 0

    def kernel_for(self, op: Op, g: Graph) -> str:
        """The C function this op's call goes to (an op with variants picks one)."""
        return self.kernel_s16 if self.kernel_s16 and is_int16(op, g) else self.kernel

    def kernel_dims(self, op: Op, g: Graph) -> tuple[Shape, ...]:
        """The tm_dims that `kernel`'s call and its `_get_buffer_size` companion take, in their order."""
        raise NotImplementedError

    def scratch_bytes(self, op: Op, g: Graph) -> int:
        """Scratch bytes the kernel needs: mirrors `<kernel>_get_buffer_size(kernel_dims)`; the planner
        places that many in the arena and the call gets them through its tm_context."""
        raise NotImplementedError

    def emit(self, op: Op, g: Graph, em: "Emitter") -> str:
        """The C call of the portable kernel (`em.reference`: whose rounding to reproduce)."""
        raise NotImplementedError


OPS: Registry[OpDef] = Registry("op")


def register(*names: str):
    def decorator(cls: type[OpDef]) -> type[OpDef]:
        OPS.register(*names)(cls())
        return cls

    return decorator


def require_int8(g: Graph, op: Op, inputs: tuple[int, ...] = (0,), outputs: tuple[int, ...] = (0,),
                 dtypes: tuple[str, ...] = ("int8",)) -> list[str]:
    """Problems with tensors that must be per-tensor quantized activations of one of `dtypes` (int8 unless the
    op has int16 kernels too), all of the same type; int16 ones symmetric (zero point 0), as TFLite requires."""
    problems = []
    seen = set()
    for role, ids in (("input", [op.inputs[i] for i in inputs]), ("output", [op.outputs[i] for i in outputs])):
        for tid in ids:
            t = g.tensors[tid]
            if t.dtype not in dtypes:
                problems.append(f"{role} '{t.name}' is {t.dtype}, only {' or '.join(dtypes)} is supported")
            elif t.quant is None:
                problems.append(f"{role} '{t.name}' has no quantization parameters")
            elif t.quant.per_channel:
                problems.append(f"{role} '{t.name}' is quantized per channel; activations must be per tensor")
            elif t.dtype == "int16" and t.zero_point != 0:
                problems.append(f"{role} '{t.name}' is int16 with zero point {t.zero_point}; int16 activations "
                                "must be symmetric (zero point 0)")
            seen.add(t.dtype)
    if not problems and len(seen) > 1:
        problems.append(f"inputs and outputs mix {' and '.join(sorted(seen))}; they must have one type")
    return problems


INT16_DTYPES = ("int8", "int16")  # what an op with an int16 kernel (`kernel_s16`) accepts


def is_int16(op: Op, g: Graph) -> bool:
    """Whether the op computes on int16 activations (its input 0's type; `require_int8` makes the rest agree)."""
    return bool(op.inputs) and op.inputs[0] >= 0 and g.tensors[op.inputs[0]].dtype == "int16"


def check_activation(op: Op) -> list[str]:
    act = op.options.get("fusedActivationFunction", "NONE")
    return [] if act in FUSED_ACTIVATIONS else [f"fused activation {act} is not supported"]


def activation(op: Op, out: Tensor) -> tuple[int, int]:
    """The output clamp: the fused activation, narrowed by any clamp a pass folded in."""
    limits = q.LIMITS.get(out.dtype, q.LIMITS["int8"])
    rng = q.activation_range(op.options.get("fusedActivationFunction", "NONE"), out.scale, out.zero_point, limits)
    return q.intersect(rng, op.options.get("clamp", limits))


def flat(t: Tensor) -> Shape:
    """An element-wise kernel's view of a tensor of any rank: {1, 1, 1, size}."""
    return (1, 1, 1, t.size)


def rows(t: Tensor) -> Shape:
    """A tensor of any rank as {1, 1, rows, innermost dimension} (kernels that work along the last axis)."""
    depth = t.shape[-1] if t.shape else 1
    return (1, 1, t.size // depth, depth)


def elementwise_dims(op: Op, g: Graph) -> tuple[Shape, Shape]:
    return flat(g.tensors[op.inputs[0]]), flat(g.tensors[op.outputs[0]])


def same_quant(a: Tensor, b: Tensor) -> bool:
    return a.quant is not None and b.quant is not None and a.scale == b.scale and a.zero_point == b.zero_point


def window_padding(padding: str, in_size: int, filter_size: int, stride: int, dilation: int, out_size: int) -> int:
    """TFLite ComputePaddingWithOffset: the leading (top/left) padding; the trailing side may get one more."""
    if padding == "VALID":
        return 0
    effective = (filter_size - 1) * dilation + 1
    total = max((out_size - 1) * stride + effective - in_size, 0)
    return total // 2


def window_out_size(padding: str, in_size: int, filter_size: int, stride: int, dilation: int) -> int:
    effective = (filter_size - 1) * dilation + 1
    if padding == "SAME":
        return (in_size + stride - 1) // stride
    return (in_size + stride - effective) // stride


def window_geometry(op: Op, g: Graph, kh: int, kw: int) -> dict[str, tuple[int, int]]:
    """Stride, dilation and leading padding of a conv/pool window; `explicit_pad` (from folded PADs) wins."""
    o = op.options
    inp, out = g.tensors[op.inputs[0]].nhwc(), g.tensors[op.outputs[0]].nhwc()
    stride = (o.get("strideH", 1), o.get("strideW", 1))
    dilation = (o.get("dilationHFactor", 1), o.get("dilationWFactor", 1))
    pad = o.get("explicit_pad") or (
        window_padding(o.get("padding", "VALID"), inp[1], kh, stride[0], dilation[0], out[1]),
        window_padding(o.get("padding", "VALID"), inp[2], kw, stride[1], dilation[1], out[2]),
    )
    return {"stride": stride, "dilation": dilation, "pad": tuple(pad)}


def check_output_shape(op: Op, g: Graph, want) -> list[str]:
    """The output shape stored in the model must be the one its inputs give: kernels write that many bytes."""
    out = g.tensors[op.outputs[0]]
    want = [int(d) for d in want]
    if list(out.shape) != want:
        return [f"output '{out.name}' has shape {list(out.shape)}, but its inputs give {want}"]
    return []


def check_same_shape(op: Op, g: Graph) -> list[str]:
    """Element-wise ops: the output has the input's shape."""
    return check_output_shape(op, g, g.tensors[op.inputs[0]].shape)


def check_window_shape(op: Op, g: Graph, kh: int, kw: int, channels: int) -> list[str]:
    """A conv/pool output is [batch, window arithmetic H, W, `channels`] of a 4-D NHWC input."""
    o = op.options
    inp = g.tensors[op.inputs[0]].shape
    axes = ((kh, "strideH", "dilationHFactor"), (kw, "strideW", "dilationWFactor"))
    if "explicit_pad" in op.options:  # a folded PAD grew the input: the stored output is the reference
        size = tuple(g.tensors[op.outputs[0]].shape[1:3])
    else:
        size = tuple(window_out_size(o.get("padding", "VALID"), inp[i + 1], k, o.get(s, 1), o.get(d, 1))
                     for i, (k, s, d) in enumerate(axes))
    return check_output_shape(op, g, (inp[0], *size, channels))


MAX_SHIFT = 30  # kernels apply (multiplier, shift) with shift in [-31, 30] (tm_nn.h)


def check_rescale(reals, what: str, max_shift: int = MAX_SHIFT) -> list[str]:
    """A requantization factor (input scales / output scale) must fit the kernels' (multiplier, shift);
    a larger one means the scales are out of all proportion (the kernel would refuse to run)."""
    worst = max(reals)
    if q.quantize_multiplier(worst)[1] > max_shift:
        return [f"the {what} rescale factor {worst:.3g} (input scales / output scale) is too large: the "
                "tensors' quantization scales are out of proportion"]
    return []


def channel_rescales(inp: Tensor, weights: Tensor, out: Tensor, channels: int) -> list[float]:
    """TFLite PopulateConvolutionQuantizationParams: M_c = s_in * s_w[c] / s_out in double."""
    assert weights.quant is not None
    scales = weights.quant.scale if weights.quant.per_channel else weights.quant.scale * channels
    return [inp.scale * s / out.scale for s in scales[:channels]]


def per_channel_multipliers(inp: Tensor, weights: Tensor, out: Tensor, channels: int) -> tuple[list[int], list[int]]:
    pairs = [q.quantize_multiplier(m) for m in channel_rescales(inp, weights, out, channels)]
    return [m for m, _ in pairs], [s for _, s in pairs]


def check_weights(g: Graph, op: Op, weight_index: int, channel_axis: int, channels: int,
                  bias_dtype: str = "int32") -> list[str]:
    """Constant symmetric int8 weights (per tensor or per channel along `channel_axis`) and an optional
    constant bias of `bias_dtype` (int64 with int16 activations), one value per output channel, at
    `weight_index + 1`."""
    w = g.tensors[op.inputs[weight_index]]
    problems = []
    if not w.is_const:
        problems.append(f"weights '{w.name}' are not constant")
    if w.dtype != "int8":
        problems.append(f"weights '{w.name}' are {w.dtype}, only int8 is supported")
    if w.quant is None:
        problems.append(f"weights '{w.name}' have no quantization parameters")
    else:
        if w.quant.per_channel and (w.quant.axis != channel_axis or len(w.quant.scale) != channels):
            problems.append(f"weights '{w.name}' have {len(w.quant.scale)} scales along axis {w.quant.axis}, "
                            f"expected {channels} along axis {channel_axis}")
        if any(w.quant.zero_point):
            problems.append(f"weights '{w.name}' have zero point {max(w.quant.zero_point, key=abs)}; "
                            "int8 weights must be symmetric (zero point 0), as TFLite requires")
    bias = bias_id(op, weight_index + 1)
    if bias is not None:
        b = g.tensors[bias]
        if b.dtype != bias_dtype or not b.is_const:
            problems.append(f"bias '{b.name}' must be a constant {bias_dtype} tensor (got {b.dtype})")
        elif b.shape != (channels,):
            problems.append(f"bias '{b.name}' has shape {list(b.shape)}, expected [{channels}] (one per channel)")
    return problems


def bias_id(op: Op, index: int) -> int | None:
    return op.inputs[index] if len(op.inputs) > index and op.inputs[index] >= 0 else None


def wrap_int32(values) -> np.ndarray:
    """Integers reduced to int32 the way two's-complement C arithmetic wraps them (as int64 values)."""
    return (np.asarray(values, np.int64) + 2**31) % 2**32 - 2**31


def fold_input_offset(weights, bias, input_offset: int) -> np.ndarray:
    """bias[c] + input_offset * sum(weights[c, ...]), wrapped to int32 as the kernels' int32 accumulators wrap:
    the input zero point folded into a per-channel bias at compile time, so the kernels multiply raw int8 values.
    `weights` has the channels on axis 0; `bias` None means no bias."""
    w = np.asarray(weights, np.int64)
    sums = w.reshape(w.shape[0], -1).sum(axis=1)
    return wrap_int32((np.asarray(bias, np.int64) if bias is not None else 0) + input_offset * sums)


def weights_call(kernel: str, em: "Emitter", params: str, quant: str, op: Op, dims, int16: bool = False) -> str:
    """`kernel(ctx, params, quant, input, filter, bias, output)`: the call of a kernel with weights (`int16`:
    int16 activations and an int64 bias)."""
    bias = bias_id(op, 2)
    act, bias_ctype = ("int16_t", "int64_t") if int16 else ("int8_t", "int32_t")
    in_dims, w_dims, out_dims = (em.dims_value(d) for d in dims)
    return (f"{kernel}({em.context()}, &{params}, &{quant}, {in_dims}, {em.ptr(op.inputs[0], act)}, "
            f"{w_dims}, {em.ptr(op.inputs[1])}, {em.ptr(bias, bias_ctype) if bias is not None else 'NULL'}, "
            f"{out_dims}, {em.ptr(op.outputs[0], act)})")


INT32_TYPE = 2  # schema TensorType.INT32, as the conv / FC options' quantized_bias_type names it
ACC_S64_LIMIT = 2**47  # TFLite's int64 MultiplyByQuantizedMultiplier assumes |acc| below it
MAX_SHIFT_S64 = 7  # ... and a shift of at most 7


def check_s16_accumulator(op: Op, g: Graph, taps: int, reals=None) -> list[str]:
    """An int16 layer with weights: LiteRT's int64 accumulator (the 16x8 converter's default bias type) of `taps`
    products per output, within what its int64 requantization assumes; `reals` its rescale factors, if it
    requantizes with (multiplier, shift)."""
    if op.options.get("quantizedBiasType", 0) == INT32_TYPE:
        return [f"an int16 {op.kind} with an int32 accumulator (quantized_bias_type int32) is not supported; the "
                "16x8 converter's default is int64"]
    bias = bias_id(op, 2)
    largest_bias = int(np.max(np.abs(g.tensors[bias].data.astype(np.int64)))) if bias is not None else 0
    if taps * 32768 * 128 + largest_bias >= ACC_S64_LIMIT:
        return [f"the int16 accumulator of {taps} products could reach 2^47, beyond what LiteRT's int16 kernels "
                "assume"]
    if reals and q.quantize_multiplier(max(reals))[1] > MAX_SHIFT_S64:
        return [f"the output rescale factor {max(reals):.3g} is too large for TFLite's int64 requantization "
                "(the tensors' quantization scales are out of proportion)"]
    return []


def unary_call(kernel: str, em: "Emitter", params: str, op: Op, dims,
               in_ctype: str = "int8_t", out_ctype: str = "int8_t") -> str:
    """`kernel(ctx, params, input, output)`: the call of a one-input kernel."""
    in_dims, out_dims = (em.dims_value(d) for d in dims)
    return (f"{kernel}({em.context()}, &{params}, {in_dims}, {em.ptr(op.inputs[0], in_ctype)}, "
            f"{out_dims}, {em.ptr(op.outputs[0], out_ctype)})")


MAX_POOL_S16_WINDOW = 65536  # the int16 average's int32 sum holds this many values


class Pool2D(OpDef):
    """AVERAGE_POOL_2D and MAX_POOL_2D: the same checks, window and parameter struct (`params` type)."""

    params: type

    def check(self, op, g):
        problems = require_int8(g, op, dtypes=INT16_DTYPES if self.kernel_s16 else ("int8",)) + check_activation(op)
        inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        if len(inp.shape) != 4:
            return problems + ["only 4-D NHWC input is supported"]
        if "filterHeight" not in op.options or "filterWidth" not in op.options:
            return problems + ["the pool size (Pool2DOptions) is missing"]
        if is_int16(op, g) and op.options["filterHeight"] * op.options["filterWidth"] > MAX_POOL_S16_WINDOW:
            problems.append(f"an int16 pool window of more than {MAX_POOL_S16_WINDOW} values is not supported")
        if not problems and not same_quant(inp, out):
            problems.append("input and output quantization differ (TFLite requires them equal)")
        return problems + check_window_shape(op, g, op.options["filterHeight"], op.options["filterWidth"],
                                             inp.shape[3])

    def kernel_dims(self, op, g):
        return g.tensors[op.inputs[0]].nhwc(), g.tensors[op.outputs[0]].nhwc()

    def emit(self, op, g, em):
        kh, kw = op.options["filterHeight"], op.options["filterWidth"]
        geo = window_geometry(op, g, kh, kw)
        params = em.params(self.params(stride=Tile(*geo["stride"]), padding=Tile(*geo["pad"]), filter=Tile(kh, kw),
                                       activation=Activation(*activation(op, g.tensors[op.outputs[0]]))))
        ctype = "int16_t" if is_int16(op, g) else "int8_t"
        return unary_call(self.kernel_for(op, g), em, params, op, self.kernel_dims(op, g), ctype, ctype)
