from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import activation, check_rescale, flat, is_int16, register
from toolchain.compiler.ops.binary import Binary, same_size
from toolchain.compiler.ops.params import Activation, AddParams

LEFT_SHIFT = 20  # TFLite's headroom for int8 ADD and SUB
LEFT_SHIFT_S16 = 15  # ... and for int16 ADD's general path (65535 << 15 still fits an int32)


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
                   "fused ReLU/ReLU6/ReLU_N1_TO_1; int16 of the output's shape, LiteRT's general-scale path")
    kernel = "tm_add_s8"
    kernel_s16 = "tm_add_s16"

    def check(self, op, g):
        problems = super().check(op, g)
        if problems or not is_int16(op, g):
            return problems
        a, b, out = self.tensors(op, g)
        if not same_size(a, b, out):
            return [f"an int16 ADD with broadcasting (shapes {list(a.shape)} and {list(b.shape)}) is not supported"]
        if op.options.get("potScaleInt16", True) and all(_is_pot(t.scale) for t in (a, b, out)):
            return ["an int16 ADD with power-of-two scales (LiteRT's LSTM-style fixed-point path) is not supported"]
        return check_rescale([_rescales(a, b, out, LEFT_SHIFT_S16)[2]], "output", max_shift=0)

    def check_quant(self, a, b, out):  # the input factors are <= 1/2 by construction
        if a.dtype == "int16":
            return []  # checked in `check` with int16's headroom
        return check_rescale([_rescales(a, b, out)[2]], "output", max_shift=0)

    def kernel_for(self, op, g):
        """tm_add_s8 when both inputs have the output's elements (and the dsp / mve variants may take it),
        tm_add_s8_broadcast otherwise; tm_add_s16 for int16."""
        if is_int16(op, g):
            return self.kernel_s16
        return self.kernel if same_size(*self.tensors(op, g)) else f"{self.kernel}_broadcast"

    def kernel_dims(self, op, g):
        a, b, out = self.tensors(op, g)
        return (flat(a), flat(out)) if same_size(a, b, out) else super().kernel_dims(op, g)

    def params(self, op, g):
        a, b, out = self.tensors(op, g)
        shift = LEFT_SHIFT_S16 if is_int16(op, g) else LEFT_SHIFT
        return AddParams(**arithmetic_fields(a, b, out, _rescales(a, b, out, shift), shift, activation(op, out)))

    def emit(self, op, g, em):
        a, b, out = self.tensors(op, g)
        if not same_size(a, b, out):
            return self.broadcast_call(self.kernel_for(op, g), op, g, em)
        params = em.params(self.params(op, g))
        a_dims, b_dims, out_dims = (em.dims_value(flat(t)) for t in (a, b, out))
        ctype = "int16_t" if is_int16(op, g) else "int8_t"
        return (f"{self.kernel_for(op, g)}({em.context()}, &{params}, {a_dims}, {em.ptr(a.id, ctype)}, {b_dims}, "
                f"{em.ptr(b.id, ctype)}, {out_dims}, {em.ptr(out.id, ctype)})")


def _is_pot(scale: float) -> bool:
    return q.checked_log2(scale)[0]
