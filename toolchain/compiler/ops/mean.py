from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import OpDef, register, require_int8


def _axes(op, g) -> list[int] | None:
    axis = g.tensors[op.inputs[1]]
    if not axis.is_const:
        return None
    rank = len(g.tensors[op.inputs[0]].shape)
    return sorted(int(a) % rank for a in axis.data.reshape(-1))


@register("MEAN")
class Mean(OpDef):
    def check(self, op, g):
        problems = require_int8(g, op)
        if len(g.tensors[op.inputs[0]].shape) != 4 or _axes(op, g) != [1, 2]:
            problems.append("only the spatial mean (axes 1 and 2 of a 4-D NHWC tensor) is supported")
        return problems

    def emit(self, op, g, em):
        inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        _, h, w, _ = inp.nhwc()
        # LiteRT reference QuantizedMeanOrSum: fold 1/(h*w) into the multiplier.
        multiplier, shift = q.quantize_multiplier(inp.scale / out.scale)
        count = h * w
        extra = min(count.bit_length() - 1, 32, 31 + shift)
        multiplier, shift = (multiplier << extra) // count, shift - extra
        params = em.static("tm_mean_params", "mean",
                           f"{{ {-inp.zero_point}, {out.zero_point}, {multiplier}, {shift} }}")
        return f"tm_mean_hw_s8(&{params}, {em.dims(inp)}, {em.ptr(inp.id)}, {em.ptr(out.id)})"
