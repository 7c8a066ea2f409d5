from toolchain.compiler.ops.base import (
    INT16_DTYPES, OpDef, activation, channel_rescales, check_activation, check_rescale, check_s16_accumulator,
    check_weights, check_window_shape, is_int16, per_channel_multipliers, register, require_int8, weights_call,
    window_geometry,
)
from toolchain.compiler.ops.params import Activation, Conv2DParams, Tile


@register("CONV_2D")
class Conv2D(OpDef):
    constraints = ("int8 NHWC, int8 weights per tensor or per channel, any kernel, stride, dilation and padding "
                   "(a zero-point PAD before it is folded in); no grouped convolution; int16 activations with int8 "
                   "weights and an int64 bias (16x8)")
    kernel = "tm_conv2d_s8"
    kernel_s16 = "tm_conv2d_s16"
    num_inputs = (2, 3)
    optional_inputs = frozenset({2})

    def check(self, op, g):
        problems = require_int8(g, op, dtypes=INT16_DTYPES) + check_activation(op)
        w, inp = g.tensors[op.inputs[1]], g.tensors[op.inputs[0]]
        if len(w.shape) != 4 or len(inp.shape) != 4:
            return problems + [f"only 4-D NHWC input and [out, kh, kw, in] filters are supported "
                               f"(input {list(inp.shape)}, filter {list(w.shape)})"]
        int16 = is_int16(op, g)
        problems += check_weights(g, op, 1, 0, w.shape[0], bias_dtype="int64" if int16 else "int32")
        if w.shape[3] != inp.shape[3]:
            problems.append(f"grouped convolution ({inp.shape[3]} input channels, filter depth {w.shape[3]}) "
                            "is not supported")
        if not problems:
            reals = channel_rescales(inp, w, g.tensors[op.outputs[0]], w.shape[0])
            taps = w.shape[1] * w.shape[2] * w.shape[3]
            problems += check_s16_accumulator(op, g, taps, reals) if int16 else check_rescale(reals, "output")
        return problems + check_window_shape(op, g, w.shape[1], w.shape[2], w.shape[0])

    def macs(self, op, g):
        n, h, w_, c = g.tensors[op.outputs[0]].nhwc()
        _, kh, kw, cin = g.tensors[op.inputs[1]].shape
        return n * h * w_ * c * kh * kw * cin

    def kernel_dims(self, op, g):
        return (g.tensors[op.inputs[0]].nhwc(), g.tensors[op.inputs[1]].nhwc(), g.tensors[op.outputs[0]].nhwc())

    def scratch_bytes(self, op, g):
        return 0  # tm_conv2d_s8_get_buffer_size (ref)

    def emit(self, op, g, em):
        inp, w, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
        params = em.params(conv2d_params(op, g))
        quant = em.quant(*per_channel_multipliers(inp, w, out, w.shape[0]))
        return weights_call(self.kernel_for(op, g), em, params, quant, op, self.kernel_dims(op, g),
                            is_int16(op, g))


def conv2d_params(op, g) -> Conv2DParams:
    """The tm_conv2d_params of a CONV_2D (offsets, window, activation): the same for every kernel path."""
    inp, w, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    geo = window_geometry(op, g, w.shape[1], w.shape[2])
    return Conv2DParams(input_offset=-inp.zero_point, output_offset=out.zero_point, stride=Tile(*geo["stride"]),
                        padding=Tile(*geo["pad"]), dilation=Tile(*geo["dilation"]),
                        activation=Activation(*activation(op, out)))
