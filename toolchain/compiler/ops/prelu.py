"""PRELU: x >= 0 ? x : alpha * x with a constant int8 alpha broadcast over the input (per channel, or full)."""
from __future__ import annotations

import numpy as np

from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import (
    OpDef, check_rescale, check_same_shape, flat, register, require_int8,
)
from toolchain.compiler.ops.params import PreluParams


def alpha_repeats(alpha_shape, input_shape) -> bool:
    """Alpha, right-aligned against the input, is the input's trailing dimensions (after leading 1s): then
    element i of the flattened input uses alpha[i % alpha.size] (the broadcast LiteRT's BroadcastPrelu4DSlow does)."""
    dims = list(alpha_shape)
    while dims and dims[0] == 1:
        dims.pop(0)
    return len(dims) <= len(input_shape) and (not dims or list(input_shape[len(input_shape) - len(dims):]) == dims)


def multipliers(inp, alpha, out) -> tuple[tuple[int, int], tuple[int, int]]:
    """PreluPrepare: s_in / s_out and s_in * s_alpha / s_out, computed in float (the tensors' scales are float)."""
    s_in, s_alpha, s_out = np.float32(inp.scale), np.float32(alpha.scale), np.float32(out.scale)
    return q.quantize_multiplier(float(s_in / s_out)), q.quantize_multiplier(float(s_in * s_alpha / s_out))


@register("PRELU")
class Prelu(OpDef):
    constraints = "int8, constant per-tensor int8 alpha broadcast along the trailing dimensions"
    kernel = "tm_prelu_s8"
    num_inputs = (2, 2)

    def check(self, op, g):
        problems = require_int8(g, op) + check_same_shape(op, g)
        inp, alpha, out = (g.tensors[t] for t in (op.inputs[0], op.inputs[1], op.outputs[0]))
        if not alpha.is_const:
            problems.append(f"alpha '{alpha.name}' is not constant")
        if alpha.dtype != "int8" or alpha.quant is None or alpha.quant.per_channel:
            problems.append(f"alpha '{alpha.name}' must be int8 quantized per tensor (got {alpha.dtype})")
        if not alpha_repeats(alpha.shape, inp.shape):
            problems.append(f"alpha shape {list(alpha.shape)} does not repeat along the input's trailing "
                            f"dimensions {list(inp.shape)}")
        if not problems:
            problems += check_rescale([inp.scale / out.scale, inp.scale * alpha.scale / out.scale], "PRELU")
        return problems

    def kernel_dims(self, op, g):
        return (flat(g.tensors[op.inputs[0]]), flat(g.tensors[op.inputs[1]]), flat(g.tensors[op.outputs[0]]))

    def scratch_bytes(self, op, g):
        return 0  # tm_prelu_s8_get_buffer_size (ref)

    def emit(self, op, g, em):
        inp, alpha, out = (g.tensors[t] for t in (op.inputs[0], op.inputs[1], op.outputs[0]))
        (m1, s1), (m2, s2) = multipliers(inp, alpha, out)
        params = em.params(PreluParams(input_offset=-inp.zero_point, alpha_offset=-alpha.zero_point,
                                       output_offset=out.zero_point, positive_multiplier=m1, positive_shift=s1,
                                       negative_multiplier=m2, negative_shift=s2))
        in_dims, alpha_dims, out_dims = (em.dims_value(d) for d in self.kernel_dims(op, g))
        return (f"{self.kernel}({em.context()}, &{params}, {in_dims}, {em.ptr(op.inputs[0])}, "
                f"{alpha_dims}, {em.ptr(op.inputs[1])}, {out_dims}, {em.ptr(op.outputs[0])})")
