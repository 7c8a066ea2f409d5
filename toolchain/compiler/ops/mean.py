from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import OpDef, check_output_shape, check_rescale, register, require_int8, unary_call
from toolchain.compiler.ops.params import MeanParams


def _axes(op, g) -> list[int] | None:
    """The reduced axes of a 4-D input, or None when not a constant integer tensor."""
    axis = g.tensors[op.inputs[1]]
    if not axis.is_const or axis.dtype not in ("int32", "int64"):
        return None
    axes = [int(a) for a in axis.data.reshape(-1)]
    return sorted(a % 4 for a in axes) if all(-4 <= a < 4 for a in axes) else axes


@register("MEAN")
class Mean(OpDef):
    constraints = "int8 spatial mean (axes 1 and 2 of NHWC, constant int32 axes)"
    kernel = "tm_mean_s8"
    num_inputs = (2, 2)

    def check(self, op, g):
        problems = require_int8(g, op)
        inp = g.tensors[op.inputs[0]]
        if len(inp.shape) != 4 or _axes(op, g) != [1, 2]:
            return problems + ["only the spatial mean (axes 1 and 2 of a 4-D NHWC tensor, given as a constant "
                               "int32 tensor) is supported"]
        n, _, _, c = inp.shape
        if not problems:
            problems += check_rescale([inp.scale / g.tensors[op.outputs[0]].scale], "output")
        return problems + check_output_shape(op, g, (n, 1, 1, c) if op.options.get("keepDims") else (n, c))

    def kernel_dims(self, op, g):
        n, _, _, c = g.tensors[op.inputs[0]].nhwc()
        return g.tensors[op.inputs[0]].nhwc(), (n, 1, 1, c)

    def scratch_bytes(self, op, g):
        return 0  # tm_mean_s8_get_buffer_size (ref)

    def emit(self, op, g, em):
        inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        _, h, w, _ = inp.nhwc()
        # LiteRT reference QuantizedMeanOrSum: fold 1/(h*w) into the multiplier.
        multiplier, shift = q.quantize_multiplier(inp.scale / out.scale)
        count = h * w
        extra = min(count.bit_length() - 1, 32, 31 + shift)
        multiplier, shift = (multiplier << extra) // count, shift - extra
        params = em.params(MeanParams(input_offset=-inp.zero_point, output_offset=out.zero_point,
                                      multiplier=multiplier, shift=shift))
        return unary_call(self.kernel, em, params, op, self.kernel_dims(op, g))
