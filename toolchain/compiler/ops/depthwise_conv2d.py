from toolchain.compiler.ops.base import (
    OpDef, activation, bias_id, channel_rescales, check_activation, check_rescale, check_weights, check_window_shape,
    per_channel_multipliers, register, require_int8, window_geometry,
)


@register("DEPTHWISE_CONV_2D")
class DepthwiseConv2D(OpDef):
    num_inputs = (2, 3)
    optional_inputs = frozenset({2})

    def check(self, op, g):
        problems = require_int8(g, op) + check_activation(op)
        w, inp = g.tensors[op.inputs[1]], g.tensors[op.inputs[0]]
        if len(w.shape) != 4 or len(inp.shape) != 4 or w.shape[0] != 1:
            return problems + [f"only 4-D NHWC input and [1, kh, kw, out] filters are supported "
                               f"(input {list(inp.shape)}, filter {list(w.shape)})"]
        problems += check_weights(g, op, 1, 3, w.shape[3])
        if w.shape[3] % inp.shape[3]:
            problems.append(f"filter channels {w.shape[3]} are not a multiple of input channels {inp.shape[3]}")
        if not problems:
            problems += check_rescale(channel_rescales(inp, w, g.tensors[op.outputs[0]], w.shape[3]), "output")
        return problems + check_window_shape(op, g, w.shape[1], w.shape[2], w.shape[3])

    def macs(self, op, g):
        n, h, w_, c = g.tensors[op.outputs[0]].nhwc()
        _, kh, kw, _ = g.tensors[op.inputs[1]].shape
        return n * h * w_ * c * kh * kw

    def emit(self, op, g, em):
        inp, w, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
        geo = window_geometry(op, g, w.shape[1], w.shape[2])
        mult, shift = per_channel_multipliers(inp, w, out, w.shape[3])
        lo, hi = activation(op, out)
        ch_mult = out.shape[3] // inp.shape[3]
        params = em.static("tm_dw_conv_params", "dwconv", (
            f"{{ {-inp.zero_point}, {out.zero_point}, {ch_mult}, {{ {geo['stride'][0]}, {geo['stride'][1]} }}, "
            f"{{ {geo['pad'][0]}, {geo['pad'][1]} }}, {{ {geo['dilation'][0]}, {geo['dilation'][1]} }}, "
            f"{{ {lo}, {hi} }} }}"))
        quant = em.quant(mult, shift)
        bias = bias_id(op, 2)
        return (f"tm_depthwise_conv_s8({em.context()}, &{params}, &{quant}, {em.dims(inp)}, {em.ptr(inp.id)}, "
                f"{em.dims(w)}, {em.ptr(w.id)}, {em.ptr(bias, 'int32_t') if bias is not None else 'NULL'}, "
                f"{em.dims(out)}, {em.ptr(out.id)})")
