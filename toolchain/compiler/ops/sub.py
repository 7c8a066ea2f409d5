from toolchain.compiler.ops.add import LEFT_SHIFT, _rescales, arithmetic_fields
from toolchain.compiler.ops.base import activation, check_rescale, register
from toolchain.compiler.ops.binary import Binary, SubParams


@register("SUB")
class Sub(Binary):
    """LiteRT's PrepareGeneralSubOp: ADD's rescales (left shift 20). It takes QuantizeMultiplierGreaterThanOne
    for an output factor above 1, but its int8 kernels apply that as a right shift: refused."""
    constraints = ("int8 per tensor, NumPy broadcasting of either input up to rank 4 (constant or not), "
                   "fused ReLU/ReLU6/ReLU_N1_TO_1")
    kernel = "tm_sub_s8"

    def check_quant(self, a, b, out):
        return check_rescale([_rescales(a, b, out)[2]], "output", max_shift=0)

    def params(self, op, g):
        a, b, out = self.tensors(op, g)
        return SubParams(**arithmetic_fields(a, b, out, _rescales(a, b, out), LEFT_SHIFT, activation(op, out)))
