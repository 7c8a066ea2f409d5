import numpy as np

from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import activation, check_rescale, register
from toolchain.compiler.ops.binary import Binary, MulParams
from toolchain.compiler.ops.params import Activation


def rescale(a, b, out) -> float:
    """LiteRT's mul.cc Prepare: `input1 scale * input2 scale / output scale` evaluated in float (the scales are
    C floats), then widened to double for QuantizeMultiplier."""
    return float(np.float32(np.float32(a.scale) * np.float32(b.scale)) / np.float32(out.scale))


@register("MUL")
class Mul(Binary):
    constraints = ("int8 per tensor, NumPy broadcasting of either input up to rank 4 (constant or not), "
                   "fused ReLU/ReLU6/ReLU_N1_TO_1")
    kernel = "tm_mul_s8"

    def check_quant(self, a, b, out):
        return check_rescale([rescale(a, b, out)], "output")

    def params(self, op, g):
        a, b, out = self.tensors(op, g)
        multiplier, shift = q.quantize_multiplier(rescale(a, b, out))
        return MulParams(input1_offset=-a.zero_point, input2_offset=-b.zero_point, output_offset=out.zero_point,
                         multiplier=multiplier, shift=shift, activation=Activation(*activation(op, out)))
