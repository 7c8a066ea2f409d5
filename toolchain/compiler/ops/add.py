from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import OpDef, activation, check_activation, register, require_int8

LEFT_SHIFT = 20  # TFLite's headroom for int8 ADD


@register("ADD")
class Add(OpDef):
    def check(self, op, g):
        problems = require_int8(g, op, inputs=(0, 1)) + check_activation(op)
        a, b, out = (g.tensors[t] for t in (*op.inputs[:2], op.outputs[0]))
        if not (a.shape == b.shape == out.shape):
            problems.append(f"broadcasting ADD ({list(a.shape)} + {list(b.shape)}) is not supported")
        return problems

    def emit(self, op, g, em):
        a, b, out = (g.tensors[t] for t in (*op.inputs[:2], op.outputs[0]))
        twice_max = 2 * max(a.scale, b.scale)
        m1, s1 = q.quantize_multiplier(a.scale / twice_max)
        m2, s2 = q.quantize_multiplier(b.scale / twice_max)
        mo, so = q.quantize_multiplier(twice_max / ((1 << LEFT_SHIFT) * out.scale))
        lo, hi = activation(op, out)
        params = em.static("tm_add_params", "add", (
            f"{{ {-a.zero_point}, {-b.zero_point}, {out.zero_point}, {LEFT_SHIFT}, {m1}, {s1}, {m2}, {s2}, "
            f"{mo}, {so}, {{ {lo}, {hi} }} }}"))
        return f"tm_add_s8(&{params}, {em.ptr(a.id)}, {em.ptr(b.id)}, {em.ptr(out.id)}, {out.size})"
