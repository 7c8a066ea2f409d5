from toolchain.compiler.ops.base import OpDef, register, require_int8, same_quant


def paddings(op, g) -> list[tuple[int, int]] | None:
    """Per-dimension (before, after) of a 4-D NHWC PAD, or None when not constant."""
    p = g.tensors[op.inputs[1]]
    if not p.is_const:
        return None
    pairs = [tuple(int(v) for v in row) for row in p.data.reshape(-1, 2)]
    return [(0, 0)] * (4 - len(pairs)) + pairs


def pad_value(op, g) -> int:
    """PAD fills with the output zero point (a real 0); PADV2 with its quantized constant."""
    if op.kind == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        return int(g.tensors[op.inputs[2]].data.reshape(-1)[0])
    return g.tensors[op.outputs[0]].zero_point


@register("PAD", "PADV2")
class Pad(OpDef):
    def check(self, op, g):
        problems = require_int8(g, op)
        pads = paddings(op, g)
        if pads is None or len(g.tensors[op.inputs[0]].shape) > 4:
            problems.append("only constant paddings of tensors up to 4-D are supported")
        elif any(v < 0 for pair in pads for v in pair):
            problems.append("negative padding is not supported")
        if not problems and not same_quant(g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]):
            problems.append("input and output quantization differ")
        if op.kind == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0 and not g.tensors[op.inputs[2]].is_const:
            problems.append("the constant value of PADV2 must be constant")
        return problems

    def emit(self, op, g, em):
        inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        before = em.dims_value([b for b, _ in paddings(op, g)])
        return (f"tm_pad_s8({em.dims(inp)}, {em.ptr(inp.id)}, {before}, {em.dims(out)}, "
                f"{pad_value(op, g)}, {em.ptr(out.id)})")
