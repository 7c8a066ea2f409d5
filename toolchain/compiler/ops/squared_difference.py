from toolchain.compiler.ops.add import arithmetic_fields
from toolchain.compiler.ops.base import activation, register
from toolchain.compiler.ops.binary import Binary, SquaredDifferenceParams

LEFT_SHIFT = 7  # LiteRT's squared_difference.cc Prepare (int8)


def rescales(a, b, out) -> tuple[float, float, float]:
    """LiteRT's int8 SQUARED_DIFFERENCE Prepare (double): both inputs to twice the larger input scale, the
    squared difference (2 * left_shift bits up) to the output scale."""
    twice_max = 2 * max(a.scale, b.scale)
    return (a.scale / twice_max, b.scale / twice_max,
            twice_max * twice_max / ((1 << 2 * LEFT_SHIFT) * out.scale))


@register("SQUARED_DIFFERENCE")
class SquaredDifference(Binary):
    constraints = ("int8 per tensor, NumPy broadcasting of either input up to rank 4 (constant or not), "
                   "output scale above (2 * larger input scale)^2 / 2^14")
    kernel = "tm_squared_difference_s8"
    fused_activation = False

    def check_quant(self, a, b, out):
        real = rescales(a, b, out)[2]
        if real >= 1.0:  # LiteRT's QuantizeMultiplierSmallerThanOneExp aborts on it
            return [f"the output rescale factor {real:.3g} ((2 * larger input scale)^2 / (2^14 * output scale)) is "
                    "not below 1, which LiteRT's int8 SQUARED_DIFFERENCE refuses"]
        return []

    def params(self, op, g):
        a, b, out = self.tensors(op, g)
        return SquaredDifferenceParams(**arithmetic_fields(a, b, out, rescales(a, b, out), LEFT_SHIFT,
                                                           activation(op, out)))
