from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import OpDef, activation, check_activation, check_rescale, register, require_int8

LEFT_SHIFT = 20  # TFLite's headroom for int8 ADD


def _rescales(a, b, out) -> tuple[float, float, float]:
    """TFLite's int8 ADD: both inputs to twice the larger input scale, the sum to the output scale."""
    twice_max = 2 * max(a.scale, b.scale)
    return a.scale / twice_max, b.scale / twice_max, twice_max / ((1 << LEFT_SHIFT) * out.scale)


@register("ADD")
class Add(OpDef):
    num_inputs = (2, 2)

    def check(self, op, g):
        problems = require_int8(g, op, inputs=(0, 1)) + check_activation(op)
        a, b, out = (g.tensors[t] for t in (*op.inputs[:2], op.outputs[0]))
        if not (a.shape == b.shape == out.shape):
            problems.append(f"broadcasting ADD ({list(a.shape)} + {list(b.shape)}) is not supported")
        if not problems:  # the input factors are <= 1/2 by construction
            problems += check_rescale([_rescales(a, b, out)[2]], "output", max_shift=0)
        return problems

    def emit(self, op, g, em):
        a, b, out = (g.tensors[t] for t in (*op.inputs[:2], op.outputs[0]))
        (m1, s1), (m2, s2), (mo, so) = (q.quantize_multiplier(r) for r in _rescales(a, b, out))
        lo, hi = activation(op, out)
        params = em.static("tm_add_params", "add", (
            f"{{ {-a.zero_point}, {-b.zero_point}, {out.zero_point}, {LEFT_SHIFT}, {m1}, {s1}, {m2}, {s2}, "
            f"{mo}, {so}, {{ {lo}, {hi} }} }}"))
        return f"tm_add_s8(&{params}, {em.ptr(a.id)}, {em.ptr(b.id)}, {em.ptr(out.id)}, {out.size})"
