import math

from toolchain.compiler.ops.base import OpDef, check_output_shape, flat, register, require_int8, same_quant
from toolchain.compiler.ops.params import ConcatenationParams, Symbol


def _check_shapes(op, g) -> list[str]:
    """Inputs of one rank, equal except along the axis, whose sizes there add up to the output's."""
    shapes = [g.tensors[t].shape for t in op.inputs]
    rank, axis = len(shapes[0]), op.options.get("axis", 0)
    if not -rank <= axis < rank:
        return [f"axis {axis} is out of range for rank-{rank} inputs"]
    axis %= rank
    rest = {s[:axis] + s[axis + 1:] for s in shapes}
    if any(len(s) != rank for s in shapes) or len(rest) != 1:
        return [f"inputs {[list(s) for s in shapes]} differ in rank or outside axis {axis}"]
    want = list(shapes[0])
    want[axis] = sum(s[axis] for s in shapes)
    return check_output_shape(op, g, want)


@register("CONCATENATION")
class Concatenation(OpDef):
    constraints = "any axis, no fused activation"
    kernel = "tm_concatenation_s8"
    num_inputs = (1, None)

    def check(self, op, g):
        problems = require_int8(g, op, inputs=tuple(range(len(op.inputs))))
        out = g.tensors[op.outputs[0]]
        if op.options.get("fusedActivationFunction", "NONE") != "NONE":
            problems.append("a fused activation on CONCATENATION is not supported")
        if not problems and not all(same_quant(g.tensors[t], out) for t in op.inputs):
            problems.append("inputs must share the output's scale and zero point (TFLite requires it for int8)")
        return problems + _check_shapes(op, g)

    def kernel_dims(self, op, g):
        return (flat(g.tensors[op.outputs[0]]),)

    def scratch_bytes(self, op, g):
        return 0  # tm_concatenation_s8_get_buffer_size (ref)

    def emit(self, op, g, em):
        out = g.tensors[op.outputs[0]]
        axis = op.options.get("axis", 0) % len(out.shape)
        inner = math.prod(out.shape[axis + 1:])
        sizes = [g.tensors[t].shape[axis] * inner for t in op.inputs]
        params = em.params(ConcatenationParams(copy_size=Symbol(em.array("int32_t", sizes, "concat_size")),
                                               num_inputs=len(sizes), outer=math.prod(out.shape[:axis])))
        # A compound literal, not a static table: an input may be the caller's input pointer.
        inputs = "(const int8_t *const[]){ " + ", ".join(em.ptr(t) for t in op.inputs) + " }"
        (out_dims,) = (em.dims_value(d) for d in self.kernel_dims(op, g))
        return f"{self.kernel}({em.context()}, &{params}, {inputs}, {out_dims}, {em.ptr(out.id)})"
