"""What the element-wise binary ops (ADD, SUB, MUL, MAXIMUM, MINIMUM, SQUARED_DIFFERENCE) share: NumPy
broadcasting up to rank 4, its walk as the kernels see it (merged dimensions and per-input strides, tm_broadcast in
tm_nn.h), the checks, and the call `tm_<op>_s8(ctx, params, broadcast, input1, input2, output)`.

Each op's module subclasses `Binary` with its parameter struct (LiteRT's Prepare, in Python, once).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from toolchain.compiler.ir import Graph, Op, Tensor
from toolchain.compiler.ops.base import (
    INT16_DTYPES, OpDef, Shape, check_activation, check_output_shape, require_int8, same_quant,
)
from toolchain.compiler.ops.params import Activation, AddParams, CStruct, Dims

MAX_RANK = 4


@dataclass(frozen=True)
class Broadcast(CStruct):
    CTYPE: ClassVar[str] = "tm_broadcast"
    PREFIX: ClassVar[str] = "broadcast"
    input1_stride: Dims
    input2_stride: Dims


@dataclass(frozen=True)
class SubParams(AddParams):
    CTYPE: ClassVar[str] = "tm_sub_params"
    PREFIX: ClassVar[str] = "sub"


@dataclass(frozen=True)
class SquaredDifferenceParams(AddParams):
    CTYPE: ClassVar[str] = "tm_squared_difference_params"
    PREFIX: ClassVar[str] = "sqdiff"


@dataclass(frozen=True)
class MulParams(CStruct):
    CTYPE: ClassVar[str] = "tm_mul_params"
    PREFIX: ClassVar[str] = "mul"
    input1_offset: int
    input2_offset: int
    output_offset: int
    multiplier: int
    shift: int
    activation: Activation


@dataclass(frozen=True)
class MaximumParams(CStruct):
    CTYPE: ClassVar[str] = "tm_maximum_params"
    PREFIX: ClassVar[str] = "maximum"
    activation: Activation


@dataclass(frozen=True)
class MinimumParams(MaximumParams):
    CTYPE: ClassVar[str] = "tm_minimum_params"
    PREFIX: ClassVar[str] = "minimum"


def broadcast_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """NumPy's (and TFLite's CalculateShapeForBroadcast) output shape; None if the shapes do not broadcast."""
    rank = max(len(a), len(b))
    a, b = (1,) * (rank - len(a)) + tuple(a), (1,) * (rank - len(b)) + tuple(b)
    if any(x != y and 1 not in (x, y) for x, y in zip(a, b)):
        return None
    return tuple(max(x, y) if 1 not in (x, y) else x * y for x, y in zip(a, b))


@dataclass(frozen=True)
class Walk:
    """The kernel's view of one broadcast: the output as 4-D with neighbouring dimensions merged where both
    inputs broadcast alike (the innermost run as long as possible), each input's dims in that frame, and its
    element strides (0 along a dimension it broadcasts)."""
    output: Shape
    input1: Shape
    input2: Shape
    stride1: Shape
    stride2: Shape


def _pad4(dims: list[int]) -> Shape:
    return tuple([1] * (MAX_RANK - len(dims)) + dims)  # type: ignore[return-value]


def walk(a: tuple[int, ...], b: tuple[int, ...], out: tuple[int, ...]) -> Walk:
    rank = len(out)
    a, b = (1,) * (rank - len(a)) + tuple(a), (1,) * (rank - len(b)) + tuple(b)
    merged: list[list[int]] = []  # [output extent, input1 broadcasts, input2 broadcasts]
    for x, y, o in zip(a, b, out):
        if o == 1:
            continue
        pattern = [x == 1, y == 1]
        if merged and merged[-1][1:] == pattern:
            merged[-1][0] *= o
        else:
            merged.append([o, *pattern])
    if len(merged) > MAX_RANK:  # cannot happen for rank <= 4; kept so a wrong input fails loudly
        raise ValueError(f"broadcast of {a} and {b} needs {len(merged)} dimensions")
    output = _pad4([m[0] for m in merged])
    inputs = [_pad4([1 if m[1 + k] else m[0] for m in merged]) for k in (0, 1)]
    strides = []
    for dims in inputs:
        stride, step = [0] * MAX_RANK, 1
        for i in reversed(range(MAX_RANK)):
            stride[i] = step if dims[i] > 1 else 0
            step *= dims[i]
        strides.append(tuple(stride))
    return Walk(output, inputs[0], inputs[1], strides[0], strides[1])  # type: ignore[arg-type]


def same_size(a: Tensor, b: Tensor, out: Tensor) -> bool:
    """Both inputs have the output's elements in its order: the kernels' flat case."""
    return a.size == b.size == out.size


class Binary(OpDef):
    """An element-wise int8 op of two inputs with NumPy broadcasting (either may be a constant)."""

    num_inputs = (2, 2)
    fused_activation = True  # the op has TFLite's fused_activation_function option
    same_quantization = False  # MAXIMUM / MINIMUM compare raw values

    def params(self, op: Op, g: Graph) -> CStruct:
        raise NotImplementedError

    def check_quant(self, a: Tensor, b: Tensor, out: Tensor) -> list[str]:
        return []

    def tensors(self, op: Op, g: Graph) -> tuple[Tensor, Tensor, Tensor]:
        return g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]

    def check(self, op, g):
        problems = require_int8(g, op, inputs=(0, 1), dtypes=INT16_DTYPES if self.kernel_s16 else ("int8",))
        if self.fused_activation:
            problems += check_activation(op)
        a, b, out = self.tensors(op, g)
        too_big = [t for t in (a, b, out) if len(t.shape) > MAX_RANK]
        if too_big:
            return problems + [f"'{too_big[0].name}' has rank {len(too_big[0].shape)}; broadcasting {op.kind} "
                               f"covers rank <= {MAX_RANK}"]
        shape = broadcast_shape(a.shape, b.shape)
        if shape is None:
            return problems + [f"inputs of shapes {list(a.shape)} and {list(b.shape)} do not broadcast"]
        problems += check_output_shape(op, g, shape)
        if not problems and self.same_quantization and not (same_quant(a, out) and same_quant(b, out)):
            problems.append(f"{op.kind} compares raw int8 values: its inputs and output must share scale and "
                            f"zero point (got scales {a.scale:.6g}, {b.scale:.6g} -> {out.scale:.6g}, zero points "
                            f"{a.zero_point}, {b.zero_point} -> {out.zero_point})")
        if not problems:
            problems += self.check_quant(a, b, out)
        return problems

    def walk(self, op: Op, g: Graph) -> Walk:
        a, b, out = self.tensors(op, g)
        return walk(a.shape, b.shape, out.shape)

    def kernel_dims(self, op, g):
        """The companion's (input, output): input 1 and the output in the kernel's merged frame."""
        w = self.walk(op, g)
        return w.input1, w.output

    def scratch_bytes(self, op, g):
        return 0  # tm_<op>_s8_get_buffer_size (ref)

    def macs(self, op, g):
        return 0

    def emit(self, op, g, em):
        return self.broadcast_call(self.kernel_for(op, g), op, g, em)

    def broadcast_call(self, kernel: str, op: Op, g: Graph, em) -> str:
        w = self.walk(op, g)
        params = em.params(self.params(op, g))
        broadcast = em.params(Broadcast(Dims(*w.stride1), Dims(*w.stride2)))
        in1, in2, out = (em.dims_value(d) for d in (w.input1, w.input2, w.output))
        return (f"{kernel}({em.context()}, &{params}, &{broadcast}, {in1}, {em.ptr(op.inputs[0])}, "
                f"{in2}, {em.ptr(op.inputs[1])}, {out}, {em.ptr(op.outputs[0])})")
