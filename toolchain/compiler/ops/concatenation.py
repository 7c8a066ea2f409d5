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

    def copy_sizes(self, op, g) -> tuple[list[int], int]:
        """The bytes each input gives every output row, and the number of rows."""
        out = g.tensors[op.outputs[0]]
        axis = op.options.get("axis", 0) % len(out.shape)
        inner = math.prod(out.shape[axis + 1:])
        return [g.tensors[t].shape[axis] * inner for t in op.inputs], math.prod(out.shape[:axis])

    def emit(self, op, g, em):
        out = g.tensors[op.outputs[0]]
        sizes, outer = self.copy_sizes(op, g)
        params = em.params(ConcatenationParams(copy_size=Symbol(em.array("int32_t", sizes, "concat_size")),
                                               num_inputs=len(sizes), outer=outer))
        # A compound literal, not a static table: an input may be the caller's input pointer.
        inputs = "(const int8_t *const[]){ " + ", ".join(em.ptr(t) for t in op.inputs) + " }"
        (out_dims,) = (em.dims_value(d) for d in self.kernel_dims(op, g))
        return f"{self.kernel}({em.context()}, &{params}, {inputs}, {out_dims}, {em.ptr(out.id)})"


@register("PACK")
class Pack(Concatenation):
    """Stacking along a new axis is concatenating along it inputs that have it as size 1: the same byte
    interleave (LiteRT's int8 PACK, like its CONCATENATION, copies bytes and requires one quantization)."""

    constraints = "any axis, inputs share the output's quantization"

    def check(self, op, g):
        problems = require_int8(g, op, inputs=tuple(range(len(op.inputs))))
        shapes = {g.tensors[t].shape for t in op.inputs}
        rank = len(g.tensors[op.inputs[0]].shape) + 1
        axis = op.options.get("axis", 0)
        if op.options.get("valuesCount", len(op.inputs)) != len(op.inputs):
            problems.append(f"values_count {op.options['valuesCount']} but {len(op.inputs)} input(s)")
        if not -rank <= axis < rank:
            return problems + [f"axis {axis} is out of range for a rank-{rank} output"]
        if len(shapes) != 1:
            return problems + [f"inputs {[list(s) for s in shapes]} differ in shape"]
        (shape,) = shapes
        axis %= rank
        problems += check_output_shape(op, g, [*shape[:axis], len(op.inputs), *shape[axis:]])
        out = g.tensors[op.outputs[0]]
        if not problems and not all(same_quant(g.tensors[t], out) for t in op.inputs):
            problems.append("inputs must share the output's scale and zero point (LiteRT requires it for int8)")
        return problems

    def copy_sizes(self, op, g):
        out = g.tensors[op.outputs[0]]
        axis = op.options.get("axis", 0) % len(out.shape)
        return [math.prod(out.shape[axis + 1:])] * len(op.inputs), math.prod(out.shape[:axis])
