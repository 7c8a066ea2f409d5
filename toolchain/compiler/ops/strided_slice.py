import math

from toolchain.compiler.ops.base import OpDef, check_output_shape, register, require_int8, same_quant, unary_call
from toolchain.compiler.ops.split import const_ints
from toolchain.compiler.ops.params import Dims, StridedSliceParams


def resolve(op, g) -> tuple[list[int], list[int], list[int]] | None:
    """(begin, stride, count) per axis of the input padded to 4-D, as TFLite's StridedSlice resolves
    begin/end masks, negative indices and clamping; None when not statically resolvable."""
    inp = g.tensors[op.inputs[0]]
    tensors = [g.tensors[t] for t in op.inputs[1:4]]
    if not all(t.is_const and t.size == len(inp.shape) for t in tensors) or len(inp.shape) > 4:
        return None
    begin, end, strides = (t.data.reshape(-1).tolist() for t in tensors)
    o = op.options
    rank = len(inp.shape)
    starts, steps, counts = [], [], []
    for i, dim in enumerate(inp.shape):
        s = strides[i]
        if s == 0:
            return None
        if o.get("beginMask", 0) >> i & 1:
            start = 0 if s > 0 else dim - 1
        else:
            start = begin[i] + (dim if begin[i] < 0 else 0)
        if o.get("shrinkAxisMask", 0) >> i & 1:
            stop = start + 1
        elif o.get("endMask", 0) >> i & 1:
            stop = dim if s > 0 else -1
        else:
            stop = end[i] + (dim if end[i] < 0 else 0)
        lo, hi = (0, dim) if s > 0 else (-1, dim - 1)
        start, stop = min(max(start, lo), hi), min(max(stop, lo), hi)
        starts.append(start)
        steps.append(s)
        counts.append(max(0, math.ceil((stop - start) / s)))
    pad = 4 - rank
    return [0] * pad + starts, [1] * pad + steps, [1] * pad + counts


def output_shape(op, count: list[int], rank: int) -> list[int]:
    """The slice's shape without the axes `shrinkAxisMask` removes."""
    shrink = op.options.get("shrinkAxisMask", 0)
    return [n for i, n in enumerate(count[4 - rank:]) if not shrink >> i & 1]


@register("STRIDED_SLICE")
class StridedSlice(OpDef):
    constraints = "constant begin/end/strides, up to 4-D, no ellipsis or new-axis masks"
    kernel = "tm_strided_slice_s8"
    num_inputs = (4, 4)

    def check(self, op, g):
        problems = require_int8(g, op)
        o = op.options
        if o.get("ellipsisMask", 0) or o.get("newAxisMask", 0) or o.get("offset", False):
            problems.append("ellipsis, new-axis masks and offset slices are not supported")
            return problems
        r = resolve(op, g)
        if r is None:
            return problems + ["only constant begin/end/strides (one value per input dimension, strides not 0) "
                               "on tensors up to 4-D are supported"]
        if 0 in r[2]:
            return problems + [f"the slice is empty (sizes {r[2]})"]
        problems += check_output_shape(op, g, output_shape(op, r[2], len(g.tensors[op.inputs[0]].shape)))
        if not problems and not same_quant(g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]):
            problems.append("input and output quantization differ")
        return problems

    def resolve(self, op, g):
        return resolve(op, g)

    def kernel_dims(self, op, g):
        """The input as 4-D and the slice's 4-D extent (the output's bytes before shrinking axes)."""
        return g.tensors[op.inputs[0]].nhwc(), tuple(self.resolve(op, g)[2])

    def scratch_bytes(self, op, g):
        return 0  # tm_strided_slice_s8_get_buffer_size (ref)

    def emit(self, op, g, em):
        begin, stride, _ = self.resolve(op, g)
        params = em.params(StridedSliceParams(begin=Dims(*begin), stride=Dims(*stride)))
        return unary_call(self.kernel, em, params, op, self.kernel_dims(op, g))


@register("SLICE")
class Slice(StridedSlice):
    """A constant begin and size (-1: to the end) is a strided slice of stride 1."""

    constraints = "constant begin/size, up to 4-D"
    num_inputs = (3, 3)

    def resolve(self, op, g):
        """(begin, stride, count) padded to 4-D, None unless constant and inside the input, as LiteRT's
        SLICE requires (0 <= begin, begin + size <= dim)."""
        shape = g.tensors[op.inputs[0]].shape
        begin, size = const_ints(g, op.inputs[1]), const_ints(g, op.inputs[2])
        if begin is None or size is None or len(begin) != len(shape) or len(size) != len(shape) or len(shape) > 4:
            return None
        count = [d - b if n == -1 else n for b, n, d in zip(begin, size, shape)]
        if any(b < 0 or n < 1 or b + n > d for b, n, d in zip(begin, count, shape)):
            return None
        pad = 4 - len(shape)
        return [0] * pad + begin, [1] * 4, [1] * pad + count

    def check(self, op, g):
        problems = require_int8(g, op)
        r = self.resolve(op, g)
        if r is None:
            return problems + ["only constant begin/size (one value per input dimension, each slice non-empty and "
                               "inside the input) on tensors up to 4-D are supported"]
        problems += check_output_shape(op, g, r[2][4 - len(g.tensors[op.inputs[0]].shape):])
        if not problems and not same_quant(g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]):
            problems.append("input and output quantization differ")
        return problems
