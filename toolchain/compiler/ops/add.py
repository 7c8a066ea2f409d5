from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import (
    OpDef, activation, check_activation, check_rescale, flat, register, require_int8,
)
from toolchain.compiler.ops.params import Activation, AddParams

LEFT_SHIFT = 20  # TFLite's headroom for int8 ADD


def _rescales(a, b, out) -> tuple[float, float, float]:
    """TFLite's int8 ADD: both inputs to twice the larger input scale, the sum to the output scale."""
    twice_max = 2 * max(a.scale, b.scale)
    return a.scale / twice_max, b.scale / twice_max, twice_max / ((1 << LEFT_SHIFT) * out.scale)


@register("ADD")
class Add(OpDef):
    constraints = "int8 per tensor, both inputs of the output's shape (no broadcasting), fused ReLU/ReLU6"
    kernel = "tm_add_s8"
    num_inputs = (2, 2)

    def check(self, op, g):
        problems = require_int8(g, op, inputs=(0, 1)) + check_activation(op)
        a, b, out = (g.tensors[t] for t in (*op.inputs[:2], op.outputs[0]))
        if not (a.shape == b.shape == out.shape):
            problems.append(f"broadcasting ADD ({list(a.shape)} + {list(b.shape)}) is not supported")
        if not problems:  # the input factors are <= 1/2 by construction
            problems += check_rescale([_rescales(a, b, out)[2]], "output", max_shift=0)
        return problems

    def kernel_dims(self, op, g):
        """The companion's (input, output); the call takes both inputs' dims, all {1, 1, 1, size}."""
        return flat(g.tensors[op.inputs[0]]), flat(g.tensors[op.outputs[0]])

    def scratch_bytes(self, op, g):
        return 0  # tm_add_s8_get_buffer_size (ref)

    def emit(self, op, g, em):
        a, b, out = (g.tensors[t] for t in (*op.inputs[:2], op.outputs[0]))
        (m1, s1), (m2, s2), (mo, so) = (q.quantize_multiplier(r) for r in _rescales(a, b, out))
        params = em.params(AddParams(
            input1_offset=-a.zero_point, input2_offset=-b.zero_point, output_offset=out.zero_point,
            left_shift=LEFT_SHIFT, input1_multiplier=m1, input1_shift=s1, input2_multiplier=m2, input2_shift=s2,
            output_multiplier=mo, output_shift=so, activation=Activation(*activation(op, out))))
        a_dims, b_dims, out_dims = (em.dims_value(flat(t)) for t in (a, b, out))
        return (f"{self.kernel}({em.context()}, &{params}, {a_dims}, {em.ptr(a.id)}, {b_dims}, {em.ptr(b.id)}, "
                f"{out_dims}, {em.ptr(out.id)})")
