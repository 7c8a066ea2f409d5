from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import OpDef, check_rescale, check_same_shape, register, require_int8


def check_requantize(op, g) -> list[str]:
    """An int8 -> int8 requantization (QUANTIZE, standalone ReLUs) of the input's shape."""
    problems = require_int8(g, op) + check_same_shape(op, g)
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    return problems or check_rescale([inp.scale / out.scale], "requantization")


def requantize_call(em, inp, out, clamp: tuple[int, int]) -> str:
    """out = clamp(requantize(in - zp_in, s_in / s_out) + zp_out): QUANTIZE int8->int8 and standalone ReLUs."""
    multiplier, shift = q.quantize_multiplier(inp.scale / out.scale)
    params = em.static("tm_requantize_params", "requant", (
        f"{{ {-inp.zero_point}, {out.zero_point}, {multiplier}, {shift}, {{ {clamp[0]}, {clamp[1]} }} }}"))
    return f"tm_requantize_s8(&{params}, {em.ptr(inp.id)}, {em.ptr(out.id)}, {out.size})"


@register("QUANTIZE")
class Quantize(OpDef):
    def check(self, op, g):
        if g.tensors[op.inputs[0]].dtype == "float32":
            return require_int8(g, op, inputs=()) + check_same_shape(op, g)
        return check_requantize(op, g)

    def emit(self, op, g, em):
        inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        if inp.dtype == "float32":
            return (f"tm_quantize_f32_s8({em.ptr(inp.id, 'float')}, {q.f32(out.scale)!r}f, {out.zero_point}, "
                    f"{em.ptr(out.id)}, {out.size})")
        return requantize_call(em, inp, out, (q.INT8_MIN, q.INT8_MAX))


@register("DEQUANTIZE")
class Dequantize(OpDef):
    def check(self, op, g):
        problems = require_int8(g, op, outputs=())
        if g.tensors[op.outputs[0]].dtype != "float32":
            problems.append("only int8 -> float32 DEQUANTIZE is supported")
        return problems + check_same_shape(op, g)

    def emit(self, op, g, em):
        inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        return (f"tm_dequantize_s8_f32({em.ptr(inp.id)}, {q.f32(inp.scale)!r}f, {inp.zero_point}, "
                f"{em.ptr(out.id, 'float')}, {out.size})")
