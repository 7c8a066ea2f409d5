from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import OpDef, check_same_shape, register, require_int8, rows, unary_call
from toolchain.compiler.ops.params import SoftmaxParams

SCALED_DIFF_INTEGER_BITS = 5


@register("SOFTMAX")
class Softmax(OpDef):
    constraints = "int8 along the last axis"
    kernel = "tm_softmax_s8"
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

    def kernel_dims(self, op, g):
        return rows(g.tensors[op.inputs[0]]), rows(g.tensors[op.outputs[0]])

    def scratch_bytes(self, op, g):
        return 0  # tm_softmax_s8_get_buffer_size (ref)

    def emit(self, op, g, em):
        inp = g.tensors[op.inputs[0]]
        beta = q.f32(op.options.get("beta", 1.0))
        multiplier, left_shift = q.preprocess_softmax_scaling(beta, inp.scale, SCALED_DIFF_INTEGER_BITS)
        diff_min = -q.calculate_input_radius(SCALED_DIFF_INTEGER_BITS, left_shift)
        params = em.params(SoftmaxParams(input_multiplier=multiplier, input_left_shift=left_shift, diff_min=diff_min))
        return unary_call(self.kernel, em, params, op, self.kernel_dims(op, g))
