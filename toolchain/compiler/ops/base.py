"""The operator interface, its registry, and checks shared by several operators."""
from __future__ import annotations

from typing import TYPE_CHECKING

from toolchain.compiler import quant as q
from toolchain.compiler.ir import Graph, Op, Tensor
from toolchain.registry import Registry

if TYPE_CHECKING:
    from toolchain.compiler.codegen import Emitter

FUSED_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


class OpDef:
    """How one TFLite operator is checked, counted and emitted.

    `aliases_output` ops (RESHAPE...) produce no code: their output shares the input's storage.
    The frontend checks the arity before any `check` runs: `num_inputs` is (fewest, most or None for any),
    and only `optional_inputs` may be omitted (tensor -1).
    """

    aliases_output = False
    num_inputs: tuple[int, int | None] = (1, 1)
    optional_inputs: frozenset[int] = frozenset()
    num_outputs = 1

    def check(self, op: Op, g: Graph) -> list[str]:
        return []

    def macs(self, op: Op, g: Graph) -> int:
        return 0

    def emit(self, op: Op, g: Graph, em: "Emitter") -> str:
        raise NotImplementedError


OPS: Registry[OpDef] = Registry("op")


def register(*names: str):
    def decorator(cls: type[OpDef]) -> type[OpDef]:
        OPS.register(*names)(cls())
        return cls

    return decorator


def require_int8(g: Graph, op: Op, inputs: tuple[int, ...] = (0,), outputs: tuple[int, ...] = (0,)) -> list[str]:
    """Problems with tensors that must be per-tensor quantized int8 activations."""
    problems = []
    for role, ids in (("input", [op.inputs[i] for i in inputs]), ("output", [op.outputs[i] for i in outputs])):
        for tid in ids:
            t = g.tensors[tid]
            if t.dtype != "int8":
                problems.append(f"{role} '{t.name}' is {t.dtype}, only int8 is supported")
            elif t.quant is None:
                problems.append(f"{role} '{t.name}' has no quantization parameters")
            elif t.quant.per_channel:
                problems.append(f"{role} '{t.name}' is quantized per channel; activations must be per tensor")
    return problems


def check_activation(op: Op) -> list[str]:
    act = op.options.get("fusedActivationFunction", "NONE")
    return [] if act in FUSED_ACTIVATIONS else [f"fused activation {act} is not supported"]


def activation(op: Op, out: Tensor) -> tuple[int, int]:
    """The output clamp: the fused activation, narrowed by any clamp a pass folded in."""
    rng = q.activation_range(op.options.get("fusedActivationFunction", "NONE"), out.scale, out.zero_point)
    return q.intersect(rng, op.options.get("clamp", (q.INT8_MIN, q.INT8_MAX)))


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


def check_weights(g: Graph, op: Op, weight_index: int, channel_axis: int, channels: int) -> list[str]:
    """Constant symmetric int8 weights (per tensor or per channel along `channel_axis`) and an optional
    constant int32 bias of one value per output channel, at `weight_index + 1`."""
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
        if b.dtype != "int32" or not b.is_const:
            problems.append(f"bias '{b.name}' must be a constant int32 tensor (got {b.dtype})")
        elif b.shape != (channels,):
            problems.append(f"bias '{b.name}' has shape {list(b.shape)}, expected [{channels}] (one per channel)")
    return problems


def bias_id(op: Op, index: int) -> int | None:
    return op.inputs[index] if len(op.inputs) > index and op.inputs[index] >= 0 else None
