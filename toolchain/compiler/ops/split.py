"""SPLIT, SPLIT_V and UNPACK: the input cut along one axis into outputs that share its quantization. One
tm_split_s8 call copies every output (the IR's aliases carry no byte offset, so no output can share the input)."""
import math

from toolchain.compiler.ops.base import OpDef, flat, register, require_int8, same_quant
from toolchain.compiler.ops.params import SplitParams, Symbol


def const_ints(g, tid: int) -> list[int] | None:
    """The values of a constant integer tensor, None when it is not one."""
    t = g.tensors[tid]
    if not t.is_const or t.dtype not in ("int32", "int64"):
        return None
    return [int(v) for v in t.data.reshape(-1).tolist()]


def normal_axis(axis: int, rank: int) -> int | None:
    """`axis` in [0, rank), counted from the end when negative; None when out of range."""
    return axis % rank if -rank <= axis < rank else None


class _Split(OpDef):
    kernel = "tm_split_s8"
    num_outputs = None
    data = 0  # which input is cut

    def pieces(self, op, g) -> tuple[int, list[int]] | str:
        """(axis, each output's extent along it) or why not."""
        raise NotImplementedError

    def output_shape(self, shape: tuple, axis: int, size: int) -> list[int]:
        return [size if k == axis else d for k, d in enumerate(shape)]

    def check(self, op, g):
        problems = require_int8(g, op, inputs=(self.data,), outputs=tuple(range(len(op.outputs))))
        found = self.pieces(op, g)
        if isinstance(found, str):
            return problems + [found]
        axis, sizes = found
        inp = g.tensors[op.inputs[self.data]]
        if len(sizes) != len(op.outputs):
            return problems + [f"the op cuts {len(sizes)} piece(s) but has {len(op.outputs)} output(s)"]
        for tid, size in zip(op.outputs, sizes):
            out, want = g.tensors[tid], self.output_shape(inp.shape, axis, size)
            if list(out.shape) != want:
                problems.append(f"output '{out.name}' has shape {list(out.shape)}, but its input gives {want}")
            elif not problems and not same_quant(inp, out):
                problems.append(f"output '{out.name}' does not share the input's scale and zero point")
        return problems

    def kernel_dims(self, op, g):
        return (flat(g.tensors[op.inputs[self.data]]),)

    def scratch_bytes(self, op, g):
        return 0  # tm_split_s8_get_buffer_size (ref)

    def emit(self, op, g, em):
        inp = g.tensors[op.inputs[self.data]]
        axis, sizes = self.pieces(op, g)
        inner = math.prod(inp.shape[axis + 1:])
        params = em.params(SplitParams(copy_size=Symbol(em.array("int32_t", [s * inner for s in sizes], "split_size")),
                                       num_outputs=len(sizes), outer=math.prod(inp.shape[:axis])))
        # A compound literal, not a static table: an output may be the caller's output pointer.
        outputs = "(int8_t *const[]){ " + ", ".join(em.ptr(t) for t in op.outputs) + " }"
        (in_dims,) = (em.dims_value(d) for d in self.kernel_dims(op, g))
        return f"{self.kernel}({em.context()}, &{params}, {in_dims}, {em.ptr(inp.id)}, {outputs})"


def _constant_axis(op, g, index: int, rank: int) -> int | str:
    values = const_ints(g, op.inputs[index])
    if values is None or len(values) != 1:
        return "only a constant scalar axis is supported"
    axis = normal_axis(values[0], rank)
    return f"axis {values[0]} is out of range for a rank-{rank} input" if axis is None else axis


@register("SPLIT")
class Split(_Split):
    constraints = "constant axis, equal pieces"
    num_inputs = (2, 2)
    data = 1

    def pieces(self, op, g):
        shape = g.tensors[op.inputs[1]].shape
        axis = _constant_axis(op, g, 0, len(shape))
        if isinstance(axis, str):
            return axis
        n = op.options.get("numSplits", 0)
        if n < 1 or shape[axis] % n:
            return f"{shape[axis]} along axis {axis} does not split into {n} equal pieces"
        return axis, [shape[axis] // n] * n


@register("SPLIT_V")
class SplitV(_Split):
    constraints = "constant sizes (one may be -1) and axis"
    num_inputs = (3, 3)

    def pieces(self, op, g):
        shape = g.tensors[op.inputs[0]].shape
        axis = _constant_axis(op, g, 2, len(shape))
        if isinstance(axis, str):
            return axis
        sizes = const_ints(g, op.inputs[1])
        if sizes is None:
            return "only constant split sizes are supported"
        if sizes.count(-1) == 1:
            sizes[sizes.index(-1)] = shape[axis] - sum(s for s in sizes if s != -1)
        if any(s < 1 for s in sizes) or sum(sizes) != shape[axis]:
            return f"split sizes {const_ints(g, op.inputs[1])} do not cut {shape[axis]} along axis {axis} " \
                   "into non-empty pieces"
        return axis, sizes


@register("UNPACK")
class Unpack(_Split):
    constraints = "any axis"

    def pieces(self, op, g):
        shape = g.tensors[op.inputs[0]].shape
        axis = normal_axis(op.options.get("axis", 0), len(shape)) if shape else None
        if axis is None:
            return f"axis {op.options.get('axis', 0)} is out of range for a rank-{len(shape)} input"
        if op.options.get("num", 0) != shape[axis]:
            return f"UNPACK of {op.options.get('num', 0)} from a dimension of {shape[axis]}"
        return axis, [1] * shape[axis]

    def output_shape(self, shape, axis, size):
        return [d for k, d in enumerate(shape) if k != axis]
