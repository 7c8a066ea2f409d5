from toolchain.compiler.ops.base import (
    OpDef, activation, bias_id, check_activation, check_weights, register, require_int8,
)


@register("FULLY_CONNECTED")
class FullyConnected(OpDef):
    def check(self, op, g):
        problems = require_int8(g, op) + check_activation(op)
        w = g.tensors[op.inputs[1]]
        if len(w.shape) != 2:
            return problems + [f"weights '{w.name}' must be 2-D [out, in], got {list(w.shape)}"]
        problems += check_weights(g, op, 1, 0, w.shape[0])
        if op.options.get("weightsFormat", 0) != 0:
            problems.append("shuffled FULLY_CONNECTED weights are not supported")
        if g.tensors[op.inputs[0]].size % w.shape[1]:
            problems.append(f"input size {g.tensors[op.inputs[0]].size} is not a multiple of depth {w.shape[1]}")
        return problems

    def macs(self, op, g):
        return g.tensors[op.inputs[0]].size * g.tensors[op.inputs[1]].shape[0]

    def emit(self, op, g, em):
        inp, w, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
        out_depth, depth = w.shape
        # LiteRT's reference FC rescales in double: (double)s_in * (double)s_w / (double)s_out.
        scales = [inp.scale * s / out.scale for s in w.quant.scale]
        lo, hi = activation(op, out)
        params = em.static("tm_fc_params", "fc", (
            f"{{ {-inp.zero_point}, {-w.zero_point}, {out.zero_point}, {int(w.quant.per_channel)}, "
            f"{{ {lo}, {hi} }} }}"))
        scale = em.array("double", [repr(s) for s in scales], "fc_scale")
        bias = bias_id(op, 2)
        return (f"tm_fully_connected_s8({em.context()}, &{params}, {scale}, {inp.size // depth}, {depth}, {out_depth}, "
                f"{em.ptr(inp.id)}, {em.ptr(w.id)}, {em.ptr(bias, 'int32_t') if bias is not None else 'NULL'}, "
                f"{em.ptr(out.id)})")
