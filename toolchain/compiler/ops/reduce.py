"""REDUCE_MAX and REDUCE_MIN over any constant axes, and the axis handling MEAN (ops/mean.py) shares.

A reduction keeps the input's element order, so the kernels see the input as 4-D and the output as the input
with the reduced axes set to 1 (keep_dims' shape, the same bytes as without keep_dims). GlobalMaxPooling1D/2D
become REDUCE_MAX; LiteRT requires REDUCE_MAX/MIN's input and output to share scale and zero point.
"""
from toolchain.compiler.ops.base import OpDef, check_output_shape, register, require_int8, same_quant, unary_call
from toolchain.compiler.ops.params import ReduceParams


def reduced_axes(op, g) -> list[int] | None:
    """The distinct input axes the op reduces, ascending; None unless the axes are a constant int32 tensor of axes
    in [-rank, rank) (LiteRT takes only int32 axes)."""
    rank = len(g.tensors[op.inputs[0]].shape)
    axis = g.tensors[op.inputs[1]]
    if not axis.is_const or axis.dtype != "int32":
        return None
    values = [int(a) for a in axis.data.reshape(-1)]
    if not all(-rank <= a < rank for a in values):
        return None
    return sorted({a % rank for a in values})


def check_reduction(op, g, dtypes: tuple[str, ...] = ("int8",)) -> list[str]:
    """Tensors of `dtypes`, a constant set of axes of an input of rank 1 to 4, the output shape keep_dims gives."""
    problems = require_int8(g, op, dtypes=dtypes)
    inp = g.tensors[op.inputs[0]]
    if not 1 <= len(inp.shape) <= 4:
        return problems + [f"only inputs of rank 1 to 4 are supported (got shape {list(inp.shape)})"]
    axes = reduced_axes(op, g)
    if axes is None:
        return problems + [f"the axes must be a constant int32 tensor of axes of the rank-{len(inp.shape)} input"]
    if op.options.get("keepDims", False):
        want = [1 if d in axes else n for d, n in enumerate(inp.shape)]
    else:
        want = [n for d, n in enumerate(inp.shape) if d not in axes]
    return problems + check_output_shape(op, g, want)


def reduction_dims(op, g) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The input as 4-D and the output as that with the reduced axes 1 (the kernels' dims)."""
    inp = g.tensors[op.inputs[0]]
    axes, pad = reduced_axes(op, g), 4 - len(inp.shape)
    shape = inp.nhwc()
    return shape, tuple(1 if d - pad in axes else n for d, n in enumerate(shape))


def reduced_count(op, g) -> int:
    """Input elements per output element."""
    inp, out = reduction_dims(op, g)
    count = 1
    for i, o in zip(inp, out):
        count *= i // o
    return count


class Reduce(OpDef):
    constraints = ("int8 over any constant axes of a tensor up to 4-D, keep_dims or not; input and output share "
                   "scale and zero point")
    kernel = "tm_reduce_s8"
    num_inputs = (2, 2)
    reduce_kind = 0  # tm_reduce_kind

    def check(self, op, g):
        problems = check_reduction(op, g)
        if not problems and not same_quant(g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]):
            problems.append("input and output quantization differ (LiteRT requires them equal)")
        return problems

    def kernel_dims(self, op, g):
        return reduction_dims(op, g)

    def scratch_bytes(self, op, g):
        return 0  # tm_reduce_s8_get_buffer_size (ref)

    def emit(self, op, g, em):
        params = em.params(ReduceParams(kind=self.reduce_kind))
        return unary_call(self.kernel, em, params, op, self.kernel_dims(op, g))


@register("REDUCE_MAX")
class ReduceMax(Reduce):
    reduce_kind = 0  # TM_REDUCE_MAX


@register("REDUCE_MIN")
class ReduceMin(Reduce):
    reduce_kind = 1  # TM_REDUCE_MIN
