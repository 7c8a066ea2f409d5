from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import OpDef, check_same_shape, register, require_int8

SCALED_DIFF_INTEGER_BITS = 5


@register("SOFTMAX")
class Softmax(OpDef):
    def check(self, op, g):
        problems = require_int8(g, op)
        out = g.tensors[op.outputs[0]]
        if not problems and (out.zero_point != -128 or abs(out.scale - 1 / 256) > 1e-9):
            problems.append(f"int8 softmax output must have scale 1/256 and zero point -128 "
                            f"(got {out.scale}, {out.zero_point})")
        inp = g.tensors[op.inputs[0]]
        beta = q.f32(op.options.get("beta", 1.0))
        if not problems and beta * inp.scale * (1 << (31 - SCALED_DIFF_INTEGER_BITS)) <= 1.0:
            problems.append(f"input scale {inp.scale:.3g} is too small for TFLite's int8 softmax (the logits "
                            "are constant: dead activations in the model or its calibration data?)")
        return problems + check_same_shape(op, g)

    def emit(self, op, g, em):
        inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        beta = q.f32(op.options.get("beta", 1.0))
        multiplier, left_shift = q.preprocess_softmax_scaling(beta, inp.scale, SCALED_DIFF_INTEGER_BITS)
        diff_min = -q.calculate_input_radius(SCALED_DIFF_INTEGER_BITS, left_shift)
        params = em.static("tm_softmax_params", "softmax", f"{{ {multiplier}, {left_shift}, {diff_min} }}")
        depth = inp.shape[-1]
        return f"tm_softmax_s8(&{params}, {em.ptr(inp.id)}, {inp.size // depth}, {depth}, {em.ptr(out.id)})"
