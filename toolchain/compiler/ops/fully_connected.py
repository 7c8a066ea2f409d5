from toolchain.compiler.ops.base import (
    OpDef, activation, bias_id, check_activation, check_output_shape, check_weights, register, require_int8,
)


@register("FULLY_CONNECTED")
class FullyConnected(OpDef):
    num_inputs = (2, 3)
    optional_inputs = frozenset({2})

    def check(self, op, g):
        problems = require_int8(g, op) + check_activation(op)
        inp, w = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
        if len(w.shape) != 2:
            return problems + [f"weights '{w.name}' must be 2-D [out, in], got {list(w.shape)}"]
        units, depth = w.shape
        problems += check_weights(g, op, 1, 0, units)
        if op.options.get("weightsFormat", 0) != 0:
            problems.append("shuffled FULLY_CONNECTED weights are not supported")
        if inp.size % depth:
            return problems + [f"input size {inp.size} is not a multiple of depth {depth}"]
        if not op.options.get("keepNumDims", False):  # TFLite flattens the input to [size / depth, depth]
            return problems + check_output_shape(op, g, (inp.size // depth, units))
        if inp.shape[-1:] != (depth,):
            return problems + [f"keep_num_dims needs an input whose last dimension is the depth {depth} "
                               f"(got {list(inp.shape)})"]
        return problems + check_output_shape(op, g, (*inp.shape[:-1], units))

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
