import math

from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import (
    INT16_DTYPES, OpDef, check_same_shape, is_int16, register, require_int8, rows, unary_call,
)
from toolchain.compiler.ops.params import SoftmaxParams, SoftmaxS16Params, Symbol

SCALED_DIFF_INTEGER_BITS = 5
INT16_RANGE = q.INT16_MAX - q.INT16_MIN
MAX_DEPTH_S16 = 65536  # the int32 sum of up to this many int16 exps cannot overflow


@register("SOFTMAX")
class Softmax(OpDef):
    constraints = "int8 along the last axis; int16 (LiteRT's table-based int16 softmax, depth <= 65536)"
    kernel = "tm_softmax_s8"
    kernel_s16 = "tm_softmax_s16"

    def check(self, op, g):
        problems = require_int8(g, op, dtypes=INT16_DTYPES)
        if is_int16(op, g):
            depth = g.tensors[op.inputs[0]].shape[-1] if g.tensors[op.inputs[0]].shape else 1
            if depth > MAX_DEPTH_S16:
                problems.append(f"an int16 softmax over {depth} values is not supported (at most {MAX_DEPTH_S16})")
            return problems + check_same_shape(op, g)
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
        if is_int16(op, g):
            return unary_call(self.kernel_s16, em, em.params(s16_params(op, g, em)), op, self.kernel_dims(op, g),
                              "int16_t", "int16_t")
        inp = g.tensors[op.inputs[0]]
        beta = q.f32(op.options.get("beta", 1.0))
        multiplier, left_shift = q.preprocess_softmax_scaling(beta, inp.scale, SCALED_DIFF_INTEGER_BITS)
        diff_min = -q.calculate_input_radius(SCALED_DIFF_INTEGER_BITS, left_shift)
        params = em.params(SoftmaxParams(input_multiplier=multiplier, input_left_shift=left_shift, diff_min=diff_min))
        return unary_call(self.kernel, em, params, op, self.kernel_dims(op, g))


def s16_params(op, g, em) -> SoftmaxS16Params:
    """LiteRT's SoftmaxPrepare for int16: the input rescale that maps [-65535, 0] to [-10, 0] (s_in * beta in
    float32, as TFLite multiplies them, then in double), and its exp and 1 / (1 + x) tables."""
    scale_beta = q.f32(q.f32(g.tensors[op.inputs[0]].scale) * q.f32(op.options.get("beta", 1.0)))
    multiplier, shift = q.quantize_multiplier(scale_beta / (10.0 / 65535.0))
    exp_lut = q.lut_populate_int16(math.exp, 10.0 / INT16_RANGE, q.INT16_MAX, 2.0 / INT16_RANGE, 0)
    reciprocal_lut = q.lut_populate_int16(lambda x: 1.0 / (1.0 + x), 1.0 / INT16_RANGE, q.INT16_MIN,
                                          2.0 / INT16_RANGE, 0)
    return SoftmaxS16Params(input_multiplier=multiplier, input_left_shift=shift,
                            exp_lut=Symbol(em.weights("int16_t", exp_lut, "softmax_exp_lut")),
                            one_over_one_plus_x_lut=Symbol(em.weights("int16_t", reciprocal_lut,
                                                                      "softmax_reciprocal_lut")))
