"""GATHER along one axis with constant indices: whole slices of the input copied in the indices' order."""
import math

from toolchain.compiler.ops.base import OpDef, check_output_shape, flat, register, require_int8, same_quant
from toolchain.compiler.ops.params import GatherParams, Symbol
from toolchain.compiler.ops.split import const_ints, normal_axis


def _axis(op, g) -> int | None:
    rank = len(g.tensors[op.inputs[0]].shape)
    return normal_axis(op.options.get("axis", 0), rank) if rank else None


@register("GATHER")
class Gather(OpDef):
    constraints = "constant int32/int64 indices in range, any axis, no batch dims"
    kernel = "tm_gather_s8"
    num_inputs = (2, 2)

    def check(self, op, g):
        problems = require_int8(g, op)
        inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        if op.options.get("batchDims", 0) != 0:
            problems.append(f"batch_dims {op.options['batchDims']} is not supported (only 0)")
        axis = _axis(op, g)
        if axis is None:
            return problems + [f"axis {op.options.get('axis', 0)} is out of range for a rank-{len(inp.shape)} "
                               "input"]
        indices = const_ints(g, op.inputs[1])
        if indices is None:
            return problems + ["only constant int32 or int64 indices are supported"]
        bad = [i for i in indices if not 0 <= i < inp.shape[axis]]
        if bad:
            return problems + [f"index {bad[0]} is out of range for a dimension of {inp.shape[axis]} "
                               f"(axis {axis}); LiteRT refuses it at run time"]
        index_shape = g.tensors[op.inputs[1]].shape
        problems += check_output_shape(op, g, [*inp.shape[:axis], *index_shape, *inp.shape[axis + 1:]])
        if not problems and not same_quant(inp, out):
            problems.append("input and output quantization differ")
        return problems

    def kernel_dims(self, op, g):
        return flat(g.tensors[op.inputs[0]]), flat(g.tensors[op.outputs[0]])

    def scratch_bytes(self, op, g):
        return 0  # tm_gather_s8_get_buffer_size (ref)

    def emit(self, op, g, em):
        shape, axis, indices = g.tensors[op.inputs[0]].shape, _axis(op, g), const_ints(g, op.inputs[1])
        params = em.params(GatherParams(indices=Symbol(em.array("int32_t", indices, "gather_index")),
                                        num_indices=len(indices), outer=math.prod(shape[:axis]),
                                        axis_size=shape[axis], inner=math.prod(shape[axis + 1:])))
        in_dims, out_dims = (em.dims_value(d) for d in self.kernel_dims(op, g))
        return (f"{self.kernel}({em.context()}, &{params}, {in_dims}, {em.ptr(op.inputs[0])}, "
                f"{out_dims}, {em.ptr(op.outputs[0])})")
