from toolchain.compiler.ops.base import OpDef, check_output_shape, register, require_int8, same_quant, unary_call
from toolchain.compiler.ops.params import Dims, TransposeParams


def permutation(op, g) -> list[int] | None:
    """The constant permutation padded to 4-D (leading axes of 1 stay in place); None when it is not a constant
    permutation of the input's axes or the input has more than 4."""
    inp, perm = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    rank = len(inp.shape)
    if not perm.is_const or perm.size != rank or rank > 4:
        return None
    axes = [int(a) + (rank if a < 0 else 0) for a in perm.data.reshape(-1).tolist()]
    if sorted(axes) != list(range(rank)):
        return None
    pad = 4 - rank
    return list(range(pad)) + [a + pad for a in axes]


@register("TRANSPOSE")
class Transpose(OpDef):
    constraints = "a constant permutation, up to 4-D"
    kernel = "tm_transpose_s8"
    num_inputs = (2, 2)

    def check(self, op, g):
        problems = require_int8(g, op)
        perm = permutation(op, g)
        if perm is None:
            return problems + ["only a constant permutation of the input's axes (up to 4-D) is supported"]
        inp = g.tensors[op.inputs[0]]
        rank = len(inp.shape)
        problems += check_output_shape(op, g, [inp.nhwc()[a] for a in perm][4 - rank:])
        if not problems and not same_quant(inp, g.tensors[op.outputs[0]]):
            problems.append("input and output quantization differ")
        return problems

    def scratch_bytes(self, op, g):
        return 0  # tm_transpose_s8_get_buffer_size (ref)

    def emit(self, op, g, em):
        inp = g.tensors[op.inputs[0]].nhwc()
        perm = permutation(op, g)
        params = em.params(TransposeParams(perm=Dims(*perm)))
        return unary_call(self.kernel, em, params, op, (inp, tuple(inp[a] for a in perm)))
