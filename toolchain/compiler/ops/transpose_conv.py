"""TRANSPOSE_CONV (Keras Conv2DTranspose, and Conv1DTranspose between two RESHAPEs).

Its operands are (output_shape, weights, input, optional bias): the output size is data, not derived, so it must
be a constant that the forward convolution of the same stride and padding maps back onto the input, as LiteRT
and TensorFlow's conv2d_transpose require (Keras' output_padding picks among those sizes; with an even kernel and
SAME padding it can also pick one that LiteRT refuses).
"""
from __future__ import annotations

from toolchain.compiler.ir import Graph, Op
from toolchain.compiler.ops.base import (
    OpDef, activation, channel_rescales, check_activation, check_output_shape, check_rescale, check_weights,
    per_channel_multipliers, register, require_int8, weights_call, window_out_size, window_padding,
)
from toolchain.compiler.ops.params import Activation, Tile, TransposeConvParams

OUTPUT_SHAPE, WEIGHTS, INPUT, BIAS = 0, 1, 2, 3
INT16_MAX = 2**15 - 1


def as_conv(op: Op) -> Op:
    """The op with its operands in CONV_2D's order (input, weights, bias), where the shared weight checks and
    the kernel call read them."""
    bias = op.inputs[BIAS] if len(op.inputs) > BIAS else -1
    return op.replace(inputs=(op.inputs[INPUT], op.inputs[WEIGHTS], bias))


def stated_output_shape(op: Op, g: Graph) -> list[int] | None:
    """The constant int32 [4] output_shape operand; None when it is computed at run time or malformed."""
    t = g.tensors[op.inputs[OUTPUT_SHAPE]]
    if not t.is_const or t.dtype != "int32" or t.shape != (4,):
        return None
    return [int(d) for d in t.data.reshape(-1)]


def geometry(op: Op, g: Graph) -> tuple[Tile, Tile]:
    """Stride and the leading (top, left) padding in the output's frame: LiteRT pads as if the output were the
    input of the forward convolution."""
    _, kh, kw, _ = g.tensors[op.inputs[WEIGHTS]].shape
    _, h_out, w_out, _ = g.tensors[op.outputs[0]].shape
    padding = op.options.get("padding", "VALID")
    stride = Tile(op.options.get("strideH", 1), op.options.get("strideW", 1))
    pad = (window_padding(padding, size, k, s, 1, window_out_size(padding, size, k, s, 1))
           for size, k, s in ((h_out, kh, stride.h), (w_out, kw, stride.w)))
    return stride, Tile(*pad)


def taps(in_size: int, kernel: int, stride: int, pad: int, out_size: int) -> int:
    """How many (input position, filter tap) pairs along one axis land inside the output: per tap, the input
    positions i in [0, in_size) with 0 <= i * stride - pad + k < out_size (a loop over the taps, which are constant
    data, never over a size the model merely states)."""
    def first_at_least(bound: int) -> int:  # the smallest i with i * stride >= bound
        return -(-bound // stride)

    return sum(max(0, min(in_size, first_at_least(out_size + pad - k)) - max(0, first_at_least(pad - k)))
               for k in range(kernel))


@register("TRANSPOSE_CONV")
class TransposeConv(OpDef):
    constraints = ("int8 NHWC, int8 weights per tensor or per channel, any kernel and stride, SAME or VALID, "
                   "output_padding; the output shape a constant")
    kernel = "tm_transpose_conv_s8"
    num_inputs = (3, 4)
    optional_inputs = frozenset({BIAS})

    def check(self, op, g):
        conv = as_conv(op)
        problems = require_int8(g, conv) + check_activation(op)
        w, inp = g.tensors[op.inputs[WEIGHTS]], g.tensors[op.inputs[INPUT]]
        if len(w.shape) != 4 or len(inp.shape) != 4:
            return problems + [f"only 4-D NHWC input and [out, kh, kw, in] filters are supported "
                               f"(input {list(inp.shape)}, filter {list(w.shape)})"]
        problems += check_weights(g, conv, 1, 0, w.shape[0])
        if w.shape[3] != inp.shape[3]:
            problems.append(f"the filter depth {w.shape[3]} differs from the input's {inp.shape[3]} channels")
        strides = [op.options.get(key, 1) for key in ("strideH", "strideW")]
        if max(strides) > INT16_MAX:  # (and the kernels' tap loops step by the stride in int32)
            return problems + [f"strides {strides}: LiteRT requires them at most {INT16_MAX}"]
        stated = stated_output_shape(op, g)
        if stated is None:
            return problems + ["the output shape is not a constant int32 [4] tensor: its size must be known when "
                               "the model is compiled"]
        problems += check_output_shape(op, g, stated)
        if not problems:
            problems += self._check_sizes(op, g, stated)
        if not problems:
            problems += check_rescale(channel_rescales(inp, w, g.tensors[op.outputs[0]], w.shape[0]), "output")
        return problems

    @staticmethod
    def _check_sizes(op, g, stated):
        n, h_in, w_in, _ = g.tensors[op.inputs[INPUT]].shape
        c_out, kh, kw, _ = g.tensors[op.inputs[WEIGHTS]].shape
        padding = op.options.get("padding", "VALID")
        back = [window_out_size(padding, size, k, op.options.get(s, 1), 1)
                for size, k, s in ((stated[1], kh, "strideH"), (stated[2], kw, "strideW"))]
        if stated[0] != n or stated[3] != c_out or back != [h_in, w_in]:
            return [f"output shape {stated} does not fit input {list(g.tensors[op.inputs[INPUT]].shape)} and "
                    f"{c_out} {kh}x{kw} filters: it must be [{n}, H, W, {c_out}] where a {padding} convolution of "
                    f"H x W gives {h_in}x{w_in} (here {back[0]}x{back[1]}); LiteRT refuses it too"]
        return []

    def macs(self, op, g):
        """The products the kernel computes: filter taps that land in the padding are not counted."""
        n, h_in, w_in, c_in = g.tensors[op.inputs[INPUT]].shape
        c_out, kh, kw, _ = g.tensors[op.inputs[WEIGHTS]].shape
        _, h_out, w_out, _ = g.tensors[op.outputs[0]].shape
        stride, pad = geometry(op, g)
        return (n * c_in * c_out * taps(h_in, kh, stride.h, pad.h, h_out)
                * taps(w_in, kw, stride.w, pad.w, w_out))

    def kernel_dims(self, op, g):
        return tuple(g.tensors[t].nhwc() for t in (op.inputs[INPUT], op.inputs[WEIGHTS], op.outputs[0]))

    def scratch_bytes(self, op, g):
        return 0  # tm_transpose_conv_s8_get_buffer_size (ref)

    def emit(self, op, g, em):
        inp, w, out = (g.tensors[t] for t in (op.inputs[INPUT], op.inputs[WEIGHTS], op.outputs[0]))
        stride, pad = geometry(op, g)
        params = em.params(TransposeConvParams(input_offset=-inp.zero_point, output_offset=out.zero_point,
                                               stride=stride, padding=pad,
                                               activation=Activation(*activation(op, out))))
        quant = em.quant(*per_channel_multipliers(inp, w, out, w.shape[0]))
        return weights_call(self.kernel, em, params, quant, as_conv(op), self.kernel_dims(op, g))
