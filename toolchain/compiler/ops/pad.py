from toolchain.compiler.ops.base import OpDef, check_output_shape, register, require_int8, same_quant, unary_call
from toolchain.compiler.ops.params import Dims, PadParams


def paddings(op, g) -> list[tuple[int, int]] | None:
    """Per-dimension (before, after) of a 4-D NHWC PAD, or None when not constant."""
    p = g.tensors[op.inputs[1]]
    if not p.is_const:
        return None
    pairs = [tuple(int(v) for v in row) for row in p.data.reshape(-1, 2)]
    return [(0, 0)] * (4 - len(pairs)) + pairs


def _value_id(op) -> int | None:
    """The optional third input: the quantized constant to pad with (LiteRT reads it for PAD and PADV2)."""
    return op.inputs[2] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None


def pad_value(op, g) -> int:
    """The constant value when given, else the output zero point (a real 0)."""
    value = _value_id(op)
    if value is not None:
        return int(g.tensors[value].data.reshape(-1)[0])
    return g.tensors[op.outputs[0]].zero_point


@register("PAD", "PADV2")
class Pad(OpDef):
    constraints = ("constant paddings, up to 4-D, none negative (folded into the next convolution when it pads "
                   "with the zero point)")
    kernel = "tm_pad_s8"
    num_inputs = (2, 3)
    optional_inputs = frozenset({2})

    def check(self, op, g):
        problems = require_int8(g, op)
        inp, p = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
        rank = len(inp.shape)
        if not p.is_const or rank > 4:
            return problems + ["only constant paddings of tensors up to 4-D are supported"]
        if p.shape != (rank, 2):
            return problems + [f"paddings have shape {list(p.shape)}, expected [{rank}, 2] for the input's rank"]
        pads = paddings(op, g)[4 - rank:]
        if any(v < 0 for pair in pads for v in pair):
            problems.append("negative padding is not supported")
        problems += check_output_shape(op, g, [d + before + after for d, (before, after) in zip(inp.shape, pads)])
        if not problems and not same_quant(g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]):
            problems.append("input and output quantization differ")
        value = _value_id(op)
        if value is not None and not (g.tensors[value].is_const and g.tensors[value].dtype == "int8"
                                      and g.tensors[value].size == 1):
            problems.append("the padding value (third input) must be one constant int8")
        return problems

    def kernel_dims(self, op, g):
        return g.tensors[op.inputs[0]].nhwc(), g.tensors[op.outputs[0]].nhwc()

    def scratch_bytes(self, op, g):
        return 0  # tm_pad_s8_get_buffer_size (ref)

    def emit(self, op, g, em):
        params = em.params(PadParams(pad_before=Dims(*(b for b, _ in paddings(op, g))), pad_value=pad_value(op, g)))
        return unary_call(self.kernel, em, params, op, self.kernel_dims(op, g))
