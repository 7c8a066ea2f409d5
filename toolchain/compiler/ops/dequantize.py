from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import OpDef, check_same_shape, elementwise_dims, register, require_int8, unary_call
from toolchain.compiler.ops.params import DequantizeParams


@register("DEQUANTIZE")
class Dequantize(OpDef):
    constraints = "int8 -> float32 (a model's float outputs)"
    kernel = "tm_dequantize_s8"

    def check(self, op, g):
        problems = require_int8(g, op, outputs=())
        if g.tensors[op.outputs[0]].dtype != "float32":
            problems.append("only int8 -> float32 DEQUANTIZE is supported")
        return problems + check_same_shape(op, g)

    def kernel_dims(self, op, g):
        return elementwise_dims(op, g)

    def scratch_bytes(self, op, g):
        return 0  # tm_dequantize_s8_get_buffer_size (ref)

    def emit(self, op, g, em):
        inp = g.tensors[op.inputs[0]]
        params = em.params(DequantizeParams(scale=q.f32(inp.scale), zero_point=inp.zero_point))
        return unary_call(self.kernel, em, params, op, self.kernel_dims(op, g), out_ctype="float")
