from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import OpDef, check_output_shape, check_rescale, register, require_int8


def _axes(op, g) -> list[int] | None:
    """The reduced axes of a 4-D input, or None when not constant."""
    axis = g.tensors[op.inputs[1]]
    if not axis.is_const:
        return None
    axes = [int(a) for a in axis.data.reshape(-1)]
    return sorted(a % 4 for a in axes) if all(-4 <= a < 4 for a in axes) else axes


@register("MEAN")
class Mean(OpDef):
    num_inputs = (2, 2)

    def check(self, op, g):
        problems = require_int8(g, op)
        inp = g.tensors[op.inputs[0]]
        if len(inp.shape) != 4 or _axes(op, g) != [1, 2]:
            return problems + ["only the spatial mean (axes 1 and 2 of a 4-D NHWC tensor) is supported"]
        n, _, _, c = inp.shape
        if not problems:
            problems += check_rescale([inp.scale / g.tensors[op.outputs[0]].scale], "output")
        return problems + check_output_shape(op, g, (n, 1, 1, c) if op.options.get("keepDims") else (n, c))

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
