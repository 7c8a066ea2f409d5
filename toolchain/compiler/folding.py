"""Static shapes for a model exported with Keras's unknown batch size (shape signature -1 on axis 0).

Our contract is batch 1, so every shape is static: the int32 shape arithmetic the converter emits for such a model
(SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE, GATHER + REDUCE_PROD around a Dense on 3-D input...) is computed here,
once, in NumPy; its results become constants and the ops disappear before any op is checked. Each pass is a pure
`Graph -> Graph` function (`passes.STATIC_PASSES` runs them). An int32 op whose inputs are not all known stays, and
is refused as unsupported like any op without a kernel.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

from toolchain.compiler.ir import Graph, Op, Tensor
from toolchain.compiler.ops import OPS
from toolchain.compiler.ops.base import same_quant
from toolchain.compiler.validate import check_sizes
from toolchain.errors import ToolchainError
from toolchain.registry import Registry

SHAPE_DTYPES = ("int32", "int64")
# A folded constant lands in flash: anything larger is no shape and not worth a compile-time allocation either.
MAX_FOLDED_ELEMENTS = 1 << 16
_NUMPY = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
          "bool": np.bool_}


class Unfoldable(Exception):
    """The op's values are not a well-defined constant (bad index, unsupported option...): leave the op."""


Evaluator = Callable[[Op, Graph, list], list]
EVALUATORS: Registry[Evaluator] = Registry("constant folder")


def static_batch(g: Graph) -> Graph:
    """An unknown batch on a graph input is the stored one (the converter stores 1: our contract); any other unknown
    input dimension is refused by name."""
    tensors = dict(g.tensors)
    for tid in g.inputs:
        t = g.tensors[tid]
        refuse_unknown(t, [a for a in t.unknown if a != 0])
        tensors[tid] = dataclasses.replace(t, unknown=())
    return g.replace(tensors=tensors)


def refuse_unknown(t: Tensor, axes) -> None:
    if axes:
        raise ToolchainError(f"tensor '{t.name}' has unknown dimension(s) {list(axes)} (shape {list(t.shape)} with "
                             "-1 there in its signature); only the batch may be unknown (it is taken as 1)",
                             "give every dimension but the batch in keras.Input(shape) and re-export")


def fold_shapes(g: Graph) -> Graph:
    """In execution order: evaluate every shape-arithmetic op whose inputs are known (its outputs become constants,
    the op goes), and give each remaining output with unknown axes the shape its op implies."""
    tensors = dict(g.tensors)
    view = g.replace(tensors=tensors)  # sees each result as it is recorded below
    kept = []
    for op in g.ops:
        values = _folded(op, view)
        if values is not None:
            for tid, value in zip(op.outputs, values):
                tensors[tid] = dataclasses.replace(tensors[tid], shape=value.shape, data=value, unknown=())
            continue
        kept.append(op)
        for tid, shape in zip(op.outputs, _output_shapes(op, view)):
            if shape is not None and _agrees(tensors[tid], shape):
                tensors[tid] = dataclasses.replace(tensors[tid], shape=shape, unknown=())
    return g.replace(tensors=tensors, ops=tuple(kept))


def drop_dead_shape_ops(g: Graph) -> Graph:
    """Shape-arithmetic ops whose results nothing reads any more (their readers were folded) disappear."""
    ops = list(g.ops)
    while True:
        read = {t for op in ops for t in op.inputs} | set(g.outputs)
        dead = [i for i, op in enumerate(ops)
                if op.outputs and all(g.tensors[t].dtype in SHAPE_DTYPES and t not in read for t in op.outputs)]
        if not dead:
            return g.replace(ops=tuple(ops))
        ops = [op for i, op in enumerate(ops) if i not in dead]


def require_static(g: Graph) -> Graph:
    """What an op with a kernel reads or writes may by now have an unknown batch only, and only behind an op
    without a kernel (a SPACE_TO_BATCH_ND left unfused...), which is refused as unsupported."""
    for op in g.ops:
        if op.kind in OPS:
            for tid in (*op.inputs, *op.outputs):
                if tid >= 0:
                    refuse_unknown(g.tensors[tid], [a for a in g.tensors[tid].unknown if a != 0])
    problems = check_sizes(g)  # a shape derived above (a FULLY_CONNECTED's rows...) may be larger than any stored
    if problems:
        raise ToolchainError(problems[0], "export the model with small, fixed shapes (batch 1)")
    return g


def is_known(t: Tensor) -> bool:
    return not t.unknown


def _folded(op: Op, g: Graph) -> list[np.ndarray] | None:
    """The op's output values, or None when it is not shape arithmetic on known values."""
    evaluate = EVALUATORS.get(op.kind)
    outs = [g.tensors[t] for t in op.outputs]
    if evaluate is None or not outs or any(t in g.outputs for t in op.outputs):
        return None
    if not all(o.dtype in SHAPE_DTYPES or (op.kind == "FILL" and o.dtype in _NUMPY) for o in outs):
        return None
    ins = [g.tensors[t] if t >= 0 else None for t in op.inputs]
    if op.kind == "SHAPE":
        ready = bool(ins) and ins[0] is not None and is_known(ins[0])
    else:  # shape arithmetic is small: bigger inputs are no shapes, and could ask NumPy for untold memory
        # (all of them together: an op may list one constant thousands of times, as PACK or CONCATENATION inputs)
        ready = all(t is not None and t.is_const for t in ins) and sum(t.size for t in ins) <= MAX_FOLDED_ELEMENTS
    if not ready:
        return None
    try:
        values = evaluate(op, g, [t.data if t is not None else None for t in ins])
        return [_as_output(v, o) for v, o in zip(values, outs, strict=True)]
    except (Unfoldable, ValueError, IndexError, TypeError, OverflowError):
        return None


def _agrees(t: Tensor, shape: tuple[int, ...]) -> bool:
    """A derived shape replaces the stored one only where the model left it unknown: a stored size the model states
    and the derivation contradicts stays, for the op's own check to refuse."""
    return len(shape) == len(t.shape) and all(a in t.unknown or d == s for a, (d, s) in enumerate(zip(shape, t.shape)))


def _as_output(value, out: Tensor) -> np.ndarray:
    """The value in the output's dtype and in its stored shape (on the axes the model states)."""
    value = np.asarray(value)
    if value.size > MAX_FOLDED_ELEMENTS or value.dtype.kind not in "iub" or not _agrees(out, value.shape):
        raise Unfoldable
    return value.astype(_NUMPY[out.dtype])


AXIS_MOVERS = {"TRANSPOSE", "UNPACK", "PACK", "SPLIT", "SPLIT_V", "GATHER"}


def _output_shapes(op: Op, g: Graph) -> list[tuple[int, ...] | None]:
    """The static shape of each output that has unknown axes (None: not derivable, or nothing unknown)."""
    outs = [g.tensors[t] for t in op.outputs]
    if not any(o.unknown for o in outs):
        return [None] * len(outs)
    activations = [g.tensors[t] for t in op.inputs if t >= 0 and not g.tensors[t].is_const]
    if not all(is_known(t) for t in activations):
        return [None] * len(outs)
    if op.kind == "RESHAPE":
        return [reshape_target(op, g)]
    if op.kind == "FULLY_CONNECTED":
        return [_fully_connected_shape(op, g)]
    if op.kind in AXIS_MOVERS:
        # The batch may move off axis 0 (a time-major RNN transposes it to axis 1, then unpacks the steps): the
        # stored placeholder 1 is the batch of 1 wherever it went; the op's own check holds the shapes together.
        return [o.shape if o.unknown else None for o in outs]
    if op.kind in OPS and all(set(o.unknown) <= {0} for o in outs):
        # A kernel's output batch is its first input's (each op's check holds that), where the converter stored its
        # placeholder 1: a reshape before may have made rows of it. Another stored batch stays, to be checked.
        batch = activations[0].shape[0] if activations and activations[0].shape else 1
        return [(batch if o.shape[0] == 1 else o.shape[0], *o.shape[1:]) if o.unknown else None for o in outs]
    return [None] * len(outs)


def reshape_target(op: Op, g: Graph) -> tuple[int, ...] | None:
    """RESHAPE's new shape (its constant shape input, else its option) with a -1 resolved; None when invalid."""
    size = g.tensors[op.inputs[0]].size
    if len(op.inputs) > 1 and op.inputs[1] >= 0:
        shape_t = g.tensors[op.inputs[1]]
        if not shape_t.is_const or shape_t.dtype not in SHAPE_DTYPES or len(shape_t.shape) > 1:
            return None
        dims = [int(d) for d in shape_t.data.reshape(-1)]
    else:
        dims = [int(d) for d in op.options.get("newShape") or []]
    known = [d for d in dims if d != -1]
    if dims.count(-1) > 1 or any(not 0 < d <= size for d in known):
        return None
    rest = math.prod(known)  # Python ints: an int64 product could wrap to 0 or to `size`
    if dims.count(-1):
        if size % rest:
            return None
        dims = [size // rest if d == -1 else d for d in dims]
    return tuple(dims) if math.prod(dims) == size else None


def _fully_connected_shape(op: Op, g: Graph) -> tuple[int, ...] | None:
    inp, w = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    if len(w.shape) != 2 or not inp.shape or w.shape[1] <= 0:
        return None
    if op.options.get("keepNumDims"):
        return (*inp.shape[:-1], w.shape[0]) if inp.shape[-1] == w.shape[1] else None
    return (inp.size // w.shape[1], w.shape[0]) if inp.size % w.shape[1] == 0 else None


def _evaluator(*kinds: str):
    def decorator(fn: Evaluator) -> Evaluator:
        return EVALUATORS.register(*kinds)(fn)

    return decorator


def _bounded(shape) -> None:
    """Refuse to compute a result over the size limit (checked before NumPy allocates it)."""
    if any(d < 0 for d in shape) or math.prod(int(d) for d in shape) > MAX_FOLDED_ELEMENTS:  # no int64 wrap
        raise Unfoldable


def _axis(axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise Unfoldable
    return axis % rank


def _ints(a) -> list[int]:
    return [int(v) for v in np.asarray(a).reshape(-1)]


@_evaluator("SHAPE")
def _shape(op, g, args):
    return [np.array(g.tensors[op.inputs[0]].shape, np.int64)]


@_evaluator("STRIDED_SLICE")
def _strided_slice(op, g, args):
    x, begin, end, strides = args[0], _ints(args[1]), _ints(args[2]), _ints(args[3])
    o = op.options
    if o.get("ellipsisMask") or o.get("newAxisMask") or not len(begin) == len(end) == len(strides) <= x.ndim:
        raise Unfoldable
    index: list = []
    for i, (b, e, s) in enumerate(zip(begin, end, strides)):
        if s == 0:
            raise Unfoldable
        if o.get("shrinkAxisMask", 0) >> i & 1:
            if not -x.shape[i] <= b < x.shape[i]:
                raise Unfoldable
            index.append(b)
            continue
        e = b + e if o.get("offset") else e
        index.append(slice(None if o.get("beginMask", 0) >> i & 1 else b,
                           None if o.get("endMask", 0) >> i & 1 else e, s))
    return [x[tuple(index)]]


@_evaluator("SLICE")
def _slice(op, g, args):
    x, begin, size = args[0], _ints(args[1]), _ints(args[2])
    if not len(begin) == len(size) == x.ndim:
        raise Unfoldable
    index = []
    for b, n, d in zip(begin, size, x.shape):
        stop = d if n == -1 else b + n
        if not 0 <= b <= stop <= d:
            raise Unfoldable
        index.append(slice(b, stop))
    return [x[tuple(index)]]


@_evaluator("PACK")
def _pack(op, g, args):
    return [np.stack(args, axis=_axis(op.options.get("axis", 0), args[0].ndim + 1))]


@_evaluator("UNPACK")
def _unpack(op, g, args):
    axis = _axis(op.options.get("axis", 0), args[0].ndim)
    if args[0].shape[axis] != len(op.outputs):
        raise Unfoldable
    return [np.take(args[0], i, axis=axis) for i in range(args[0].shape[axis])]


@_evaluator("CONCATENATION")
def _concatenation(op, g, args):
    if op.options.get("fusedActivationFunction", "NONE") != "NONE":
        raise Unfoldable
    return [np.concatenate(args, axis=_axis(op.options.get("axis", 0), args[0].ndim))]


@_evaluator("GATHER")
def _gather(op, g, args):
    x, indices = args
    axis = _axis(op.options.get("axis", 0), x.ndim)
    if op.options.get("batchDims", 0) or indices.dtype.kind not in "iu" or \
            not np.all((indices >= 0) & (indices < x.shape[axis])):
        raise Unfoldable
    _bounded((*x.shape[:axis], *indices.shape, *x.shape[axis + 1:]))
    return [np.take(x, indices, axis=axis)]


@_evaluator("FILL")
def _fill(op, g, args):
    dims, value = _ints(args[0]), args[1]
    _bounded(dims)
    if value.size != 1:
        raise Unfoldable
    value_t, out = g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    if value_t.dtype != out.dtype or (out.quant is not None and not same_quant(value_t, out)):
        raise Unfoldable  # LiteRT writes the value's bytes unchanged: a different dtype or scale is not a copy
    return [np.full(dims, value.reshape(()), dtype=value.dtype)]


@_evaluator("RESHAPE")
def _reshape(op, g, args):
    shape = reshape_target(op, g)
    if shape is None:
        raise Unfoldable
    return [args[0].reshape(shape)]


@_evaluator("SQUEEZE")
def _squeeze(op, g, args):
    x = args[0]
    axes = [_axis(a, x.ndim) for a in op.options.get("squeezeDims") or []]
    if any(x.shape[a] != 1 for a in axes):
        raise Unfoldable
    return [np.squeeze(x, axis=tuple(axes)) if axes else np.squeeze(x)]


@_evaluator("EXPAND_DIMS")
def _expand_dims(op, g, args):
    axis = _ints(args[1])
    if len(axis) != 1:
        raise Unfoldable
    return [np.expand_dims(args[0], _axis(axis[0], args[0].ndim + 1))]


@_evaluator("CAST")
def _cast(op, g, args):
    if args[0].dtype.kind not in "iub":
        raise Unfoldable  # float -> int rounding is not shape arithmetic
    return [args[0]]


def _wrap32(values) -> np.ndarray:
    return (np.asarray(values, np.int64) + 2**31) % 2**32 - 2**31


@_evaluator("ADD", "SUB", "MUL", "FLOOR_DIV")
def _arithmetic(op, g, args):
    if op.options.get("fusedActivationFunction", "NONE") != "NONE" or any(v.dtype.kind not in "iu" for v in args):
        raise Unfoldable
    a, b = (np.asarray(v, np.int64) for v in args)
    _bounded(np.broadcast_shapes(a.shape, b.shape))
    if op.kind == "FLOOR_DIV":
        if np.any(b == 0):
            raise Unfoldable
        return [np.floor_divide(a, b)]
    result = {"ADD": np.add, "SUB": np.subtract, "MUL": np.multiply}[op.kind](a, b)
    return [_wrap32(result) if g.tensors[op.outputs[0]].dtype == "int32" else result]


@_evaluator("REDUCE_PROD")
def _reduce_prod(op, g, args):
    x = np.asarray(args[0], np.int64)
    axes = sorted({_axis(a, x.ndim) for a in _ints(args[1])})
    result = np.prod(x, axis=tuple(axes), keepdims=bool(op.options.get("keepDims")))
    return [_wrap32(result) if g.tensors[op.outputs[0]].dtype == "int32" else result]
