from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import (
    INT16_DTYPES, OpDef, check_same_shape, elementwise_dims, is_int16, register, require_int8, unary_call,
)
from toolchain.compiler.ops.params import DequantizeParams


@register("DEQUANTIZE")
class Dequantize(OpDef):
    constraints = "int8 or int16 -> float32 (a model's float outputs)"
    kernel = "tm_dequantize_s8"
    kernel_s16 = "tm_dequantize_s16"

    def check(self, op, g):
        problems = require_int8(g, op, outputs=(), dtypes=INT16_DTYPES)
        if g.tensors[op.outputs[0]].dtype != "float32":
            problems.append("only int8 or int16 -> float32 DEQUANTIZE is supported")
        return problems + check_same_shape(op, g)

    def kernel_dims(self, op, g):
        return elementwise_dims(op, g)

    def scratch_bytes(self, op, g):
        return 0  # tm_dequantize_s8_get_buffer_size (ref)

    def emit(self, op, g, em):
        inp = g.tensors[op.inputs[0]]
        params = em.params(DequantizeParams(scale=q.f32(inp.scale), zero_point=inp.zero_point))
        in_ctype = "int16_t" if is_int16(op, g) else "int8_t"
        return unary_call(self.kernel_for(op, g), em, params, op, self.kernel_dims(op, g), in_ctype=in_ctype,
                          out_ctype="float")
