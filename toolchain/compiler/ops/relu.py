from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import OpDef, register
from toolchain.compiler.ops.quantize import check_requantize, requantize_call

ACTIVATION_OF = {"RELU": "RELU", "RELU6": "RELU6", "RELU_N1_TO_1": "RELU_N1_TO_1"}


@register(*ACTIVATION_OF)
class Relu(OpDef):
    """A ReLU the converter left standalone: requantize + clamp (TFLite's QuantizedReluX).
    The fuse_activations pass folds it into the producer when their quantization agrees."""

    def check(self, op, g):
        return check_requantize(op, g)

    def emit(self, op, g, em):
        inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        return requantize_call(em, inp, out, q.activation_range(ACTIVATION_OF[op.kind], out.scale, out.zero_point))
