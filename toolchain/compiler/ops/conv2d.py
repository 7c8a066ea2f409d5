from toolchain.compiler.ops.base import (
    OpDef, activation, bias_id, channel_rescales, check_activation, check_rescale, check_weights, check_window_shape,
    per_channel_multipliers, register, require_int8, window_geometry,
)


@register("CONV_2D")
class Conv2D(OpDef):
    num_inputs = (2, 3)
    optional_inputs = frozenset({2})

    def check(self, op, g):
        problems = require_int8(g, op) + check_activation(op)
        w, inp = g.tensors[op.inputs[1]], g.tensors[op.inputs[0]]
        if len(w.shape) != 4 or len(inp.shape) != 4:
            return problems + [f"only 4-D NHWC input and [out, kh, kw, in] filters are supported "
                               f"(input {list(inp.shape)}, filter {list(w.shape)})"]
        problems += check_weights(g, op, 1, 0, w.shape[0])
        if w.shape[3] != inp.shape[3]:
            problems.append(f"grouped convolution ({inp.shape[3]} input channels, filter depth {w.shape[3]}) "
                            "is not supported")
        if not problems:
            problems += check_rescale(channel_rescales(inp, w, g.tensors[op.outputs[0]], w.shape[0]), "output")
        return problems + check_window_shape(op, g, w.shape[1], w.shape[2], w.shape[0])

    def macs(self, op, g):
        n, h, w_, c = g.tensors[op.outputs[0]].nhwc()
        _, kh, kw, cin = g.tensors[op.inputs[1]].shape
        return n * h * w_ * c * kh * kw * cin

    def emit(self, op, g, em):
        inp, w, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
        geo = window_geometry(op, g, w.shape[1], w.shape[2])
        mult, shift = per_channel_multipliers(inp, w, out, w.shape[0])
        lo, hi = activation(op, out)
        params = em.static("tm_conv_params", "conv", (
            f"{{ {-inp.zero_point}, {out.zero_point}, {{ {geo['stride'][0]}, {geo['stride'][1]} }}, "
            f"{{ {geo['pad'][0]}, {geo['pad'][1]} }}, {{ {geo['dilation'][0]}, {geo['dilation'][1]} }}, "
            f"{{ {lo}, {hi} }} }}"))
        quant = em.quant(mult, shift)
        bias = bias_id(op, 2)
        return (f"tm_conv_s8({em.context()}, &{params}, &{quant}, {em.dims(inp)}, {em.ptr(inp.id)}, "
                f"{em.dims(w)}, {em.ptr(w.id)}, {em.ptr(bias, 'int32_t') if bias is not None else 'NULL'}, "
                f"{em.dims(out)}, {em.ptr(out.id)})")
