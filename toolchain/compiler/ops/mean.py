"""MEAN over any constant axes, LiteRT's reference QuantizedMeanOrSum: the int32 sum of each window, minus the
input zero point per element, requantized once by s_in / s_out with 1/count folded in.

SUM would be the same kernel without the 1/count, but LiteRT 2.3's BUILTIN_REF int8 SUM reads its tensors as
uint8 (google-ai-edge/LiteRT issue 4079: among zeros, a lone -10 sums like +246), so there is no sound result to be
bit-exact with: SUM stays unsupported until LiteRT's reference is fixed."""
from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import INT16_DTYPES, OpDef, check_rescale, is_int16, register, unary_call
from toolchain.compiler.ops.params import MeanParams
from toolchain.compiler.ops.reduce import check_reduction, reduced_count, reduction_dims


def is_spatial(op, g) -> bool:
    """Whether the op reduces H and W of the 4-D view only (the dsp / mve kernels' case): output [n, 1, 1, c]."""
    (n, _, _, c), out = reduction_dims(op, g)
    return out == (n, 1, 1, c)


def mean_multiplier(real: float, count: int) -> tuple[int, int]:
    """LiteRT QuantizedMeanOrSum's (multiplier, shift) of `real` / `count`: `count`'s power of two (at most 2^32,
    and no further than shift -31) moved into the multiplier, which is then divided by `count` in int64."""
    multiplier, shift = q.quantize_multiplier(real)
    extra = min(count.bit_length() - 1, 32, 31 + shift)
    return (multiplier << extra) // count, shift - extra


@register("MEAN")
class Mean(OpDef):
    constraints = ("int8 over any constant axes of a tensor up to 4-D, keep_dims or not, input and output "
                   "quantization may differ (dsp / mve variants: the spatial mean); int16 likewise")
    kernel = "tm_mean_s8"
    kernel_s16 = "tm_mean_s16"
    num_inputs = (2, 2)

    def check(self, op, g):
        problems = check_reduction(op, g, INT16_DTYPES)
        if not problems:
            problems += check_rescale([g.tensors[op.inputs[0]].scale / g.tensors[op.outputs[0]].scale], "output")
        return problems

    def kernel_dims(self, op, g):
        return reduction_dims(op, g)

    def scratch_bytes(self, op, g):
        return 0  # tm_mean_s8_get_buffer_size (ref)

    def emit(self, op, g, em):
        inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        multiplier, shift = mean_multiplier(inp.scale / out.scale, reduced_count(op, g))
        params = em.params(MeanParams(input_offset=-inp.zero_point, output_offset=out.zero_point,
                                      multiplier=multiplier, shift=shift))
        ctype = "int16_t" if is_int16(op, g) else "int8_t"
        return unary_call(self.kernel_for(op, g), em, params, op, self.kernel_dims(op, g), ctype, ctype)

