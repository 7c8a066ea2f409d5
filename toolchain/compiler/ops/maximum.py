from toolchain.compiler.ops.base import activation, register
from toolchain.compiler.ops.binary import Binary, MaximumParams
from toolchain.compiler.ops.params import Activation


@register("MAXIMUM")
class Maximum(Binary):
    """LiteRT compares the raw int8 values (the converter gives inputs and output one quantization)."""
    constraints = ("int8 per tensor, inputs and output of one scale and zero point, NumPy broadcasting of either "
                   "input up to rank 4 (constant or not)")
    kernel = "tm_maximum_s8"
    fused_activation = False
    same_quantization = True

    def params(self, op, g):
        return MaximumParams(activation=Activation(*activation(op, self.tensors(op, g)[2])))
