import math

from toolchain.compiler.ops.base import OpDef, register, require_int8, same_quant


@register("CONCATENATION")
class Concatenation(OpDef):
    def check(self, op, g):
        problems = require_int8(g, op, inputs=tuple(range(len(op.inputs))))
        out = g.tensors[op.outputs[0]]
        if op.options.get("fusedActivationFunction", "NONE") != "NONE":
            problems.append("a fused activation on CONCATENATION is not supported")
        if not problems and not all(same_quant(g.tensors[t], out) for t in op.inputs):
            problems.append("inputs must share the output's scale and zero point (TFLite requires it for int8)")
        return problems

    def emit(self, op, g, em):
        out = g.tensors[op.outputs[0]]
        axis = op.options.get("axis", 0) % len(out.shape)
        outer = math.prod(out.shape[:axis])
        inner = math.prod(out.shape[axis + 1:])
        sizes = [g.tensors[t].shape[axis] * inner for t in op.inputs]
        # A compound literal, not a static table: an input may be the caller's input pointer.
        inputs = "(const int8_t *const[]){ " + ", ".join(em.ptr(t) for t in op.inputs) + " }"
        copy = em.array("int32_t", sizes, "concat_size")
        return f"tm_concat_s8({inputs}, {copy}, {len(sizes)}, {outer}, {em.ptr(out.id)})"
