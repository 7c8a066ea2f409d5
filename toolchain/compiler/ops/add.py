from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import activation, check_rescale, flat, register
from toolchain.compiler.ops.binary import Binary, same_size
from toolchain.compiler.ops.params import Activation, AddParams

LEFT_SHIFT = 20  # TFLite's headroom for int8 ADD and SUB


def _rescales(a, b, out, left_shift: int = LEFT_SHIFT) -> tuple[float, float, float]:
    """TFLite's int8 ADD / SUB Prepare (double): both inputs to twice the larger input scale, the sum to the
    output scale."""
    twice_max = 2 * max(a.scale, b.scale)
    return a.scale / twice_max, b.scale / twice_max, twice_max / ((1 << left_shift) * out.scale)


def arithmetic_fields(a, b, out, rescales, left_shift: int, act: tuple[int, int]) -> dict:
    """The tm_arithmetic_params fields (ADD, SUB, SQUARED_DIFFERENCE) of three real rescale factors."""
    (m1, s1), (m2, s2), (mo, so) = (q.quantize_multiplier(r) for r in rescales)
    return dict(input1_offset=-a.zero_point, input2_offset=-b.zero_point, output_offset=out.zero_point,
                left_shift=left_shift, input1_multiplier=m1, input1_shift=s1, input2_multiplier=m2,
                input2_shift=s2, output_multiplier=mo, output_shift=so, activation=Activation(*act))


@register("ADD")
class Add(Binary):
    constraints = ("int8 per tensor, NumPy broadcasting of either input up to rank 4 (constant or not), "
                   "fused ReLU/ReLU6/ReLU_N1_TO_1")
    kernel = "tm_add_s8"

    def check_quant(self, a, b, out):  # the input factors are <= 1/2 by construction
        return check_rescale([_rescales(a, b, out)[2]], "output", max_shift=0)

    def kernel_for(self, op, g):
        """tm_add_s8 when both inputs have the output's elements (and the dsp / mve variants may take it),
        tm_add_s8_broadcast otherwise."""
        return self.kernel if same_size(*self.tensors(op, g)) else f"{self.kernel}_broadcast"

    def kernel_dims(self, op, g):
        a, b, out = self.tensors(op, g)
        return (flat(a), flat(out)) if same_size(a, b, out) else super().kernel_dims(op, g)

    def params(self, op, g):
        a, b, out = self.tensors(op, g)
        return AddParams(**arithmetic_fields(a, b, out, _rescales(a, b, out), LEFT_SHIFT, activation(op, out)))

    def emit(self, op, g, em):
        a, b, out = self.tensors(op, g)
        if not same_size(a, b, out):
            return self.broadcast_call(self.kernel_for(op, g), op, g, em)
        params = em.params(self.params(op, g))
        a_dims, b_dims, out_dims = (em.dims_value(flat(t)) for t in (a, b, out))
        return (f"{self.kernel}({em.context()}, &{params}, {a_dims}, {em.ptr(a.id)}, {b_dims}, {em.ptr(b.id)}, "
                f"{out_dims}, {em.ptr(out.id)})")
