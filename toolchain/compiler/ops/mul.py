import numpy as np

from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import activation, check_rescale, flat, is_int16, register
from toolchain.compiler.ops.binary import Binary, MulParams, same_size
from toolchain.compiler.ops.params import Activation


def rescale(a, b, out) -> float:
    """LiteRT's mul.cc Prepare: `input1 scale * input2 scale / output scale` evaluated in float (the scales are
    C floats), then widened to double for QuantizeMultiplier."""
    return float(np.float32(np.float32(a.scale) * np.float32(b.scale)) / np.float32(out.scale))


@register("MUL")
class Mul(Binary):
    constraints = ("int8 per tensor, NumPy broadcasting of either input up to rank 4 (constant or not), "
                   "fused ReLU/ReLU6/ReLU_N1_TO_1; int16 of the output's shape")
    kernel = "tm_mul_s8"
    kernel_s16 = "tm_mul_s16"

    def check(self, op, g):
        problems = super().check(op, g)
        a, b, out = self.tensors(op, g)
        if not problems and is_int16(op, g) and not same_size(a, b, out):
            problems.append(f"an int16 MUL with broadcasting (shapes {list(a.shape)} and {list(b.shape)}) is not "
                            "supported")
        return problems

    def emit(self, op, g, em):
        if not is_int16(op, g):
            return super().emit(op, g, em)
        params = em.params(self.params(op, g))
        a_dims, b_dims, out_dims = (em.dims_value(flat(t)) for t in self.tensors(op, g))
        return (f"{self.kernel_s16}({em.context()}, &{params}, {a_dims}, {em.ptr(op.inputs[0], 'int16_t')}, "
                f"{b_dims}, {em.ptr(op.inputs[1], 'int16_t')}, {out_dims}, {em.ptr(op.outputs[0], 'int16_t')})")

    def check_quant(self, a, b, out):
        return check_rescale([rescale(a, b, out)], "output")

    def params(self, op, g):
        a, b, out = self.tensors(op, g)
        multiplier, shift = q.quantize_multiplier(rescale(a, b, out))
        return MulParams(input1_offset=-a.zero_point, input2_offset=-b.zero_point, output_offset=out.zero_point,
                         multiplier=multiplier, shift=shift, activation=Activation(*activation(op, out)))
