import numpy as np

from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import (
    INT16_DTYPES, OpDef, check_rescale, check_same_shape, elementwise_dims, register, require_int8, unary_call,
)
from toolchain.compiler.ops.params import Activation, QuantizeF32Params, QuantizeParams


def check_requantize(op, g) -> list[str]:
    """An int8 -> int8 requantization (QUANTIZE, standalone ReLUs) of the input's shape."""
    problems = require_int8(g, op) + check_same_shape(op, g)
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    return problems or check_rescale([inp.scale / out.scale], "requantization")


def requantize_params(params_type: type, inp, out, clamp: tuple[int, int], float_ratio: bool = False):
    """out = clamp(requantize(in - zp_in, s_in / s_out) + zp_out): QUANTIZE int8->int8 and standalone ReLUs.
    LiteRT's QUANTIZE divides the scales in double; its ReluPrepare divides the C floats (`float_ratio`), which
    rounds the ratio to float32 first and moves the multiplier's low bits for almost every pair of scales."""
    ratio = float(np.float32(inp.scale) / np.float32(out.scale)) if float_ratio else inp.scale / out.scale
    multiplier, shift = q.quantize_multiplier(ratio)
    return params_type(input_offset=-inp.zero_point, output_offset=out.zero_point, multiplier=multiplier,
                       shift=shift, activation=Activation(*clamp))


@register("QUANTIZE")
class Quantize(OpDef):
    """int8 -> int8 (tm_quantize_s8), or float -> int8 at the model's input (tm_quantize_s8_from_f32), or float ->
    int16 at an int16 model's input (tm_quantize_s16)."""

    constraints = ("float32 -> int8 (a model's float inputs), int8 -> int8 requantization; float32 -> int16 (an int16 "
                   "model's float inputs)")

    kernel = "tm_quantize_s8"
    kernel_s16 = "tm_quantize_s16"
    from_f32 = "tm_quantize_s8_from_f32"

    def check(self, op, g):
        if g.tensors[op.inputs[0]].dtype == "float32":
            return require_int8(g, op, inputs=(), dtypes=INT16_DTYPES) + check_same_shape(op, g)
        return check_requantize(op, g)

    def kernel_for(self, op, g):
        if g.tensors[op.inputs[0]].dtype != "float32":
            return self.kernel
        return self.kernel_s16 if g.tensors[op.outputs[0]].dtype == "int16" else self.from_f32

    def kernel_dims(self, op, g):
        return elementwise_dims(op, g)

    def scratch_bytes(self, op, g):
        return 0  # tm_quantize_s8_get_buffer_size, tm_quantize_s8_from_f32_get_buffer_size (ref)

    def emit(self, op, g, em):
        inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        if inp.dtype == "float32":
            params = em.params(QuantizeF32Params(scale=q.f32(out.scale), zero_point=out.zero_point))
            out_ctype = "int16_t" if out.dtype == "int16" else "int8_t"
            return unary_call(self.kernel_for(op, g), em, params, op, self.kernel_dims(op, g), in_ctype="float",
                              out_ctype=out_ctype)
        params = em.params(requantize_params(QuantizeParams, inp, out, (q.INT8_MIN, q.INT8_MAX)))
        return unary_call(self.kernel, em, params, op, self.kernel_dims(op, g))
