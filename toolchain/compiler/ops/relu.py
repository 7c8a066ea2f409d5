from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import OpDef, elementwise_dims, register, unary_call
from toolchain.compiler.ops.params import ReluParams
from toolchain.compiler.ops.quantize import check_requantize, requantize_params

ACTIVATION_OF = {"RELU": "RELU", "RELU6": "RELU6", "RELU_N1_TO_1": "RELU_N1_TO_1"}


@register(*ACTIVATION_OF)
class Relu(OpDef):
    """A ReLU the converter left standalone: requantize + clamp (TFLite's QuantizedReluX).
    The fuse_activations pass folds it into the producer when their quantization agrees."""

    constraints = "int8 requantize and clamp (folded into the layer before when the quantization agrees)"

    kernel = "tm_relu_s8"

    def check(self, op, g):
        return check_requantize(op, g)

    def kernel_dims(self, op, g):
        return elementwise_dims(op, g)

    def scratch_bytes(self, op, g):
        return 0  # tm_relu_s8_get_buffer_size (ref)

    def emit(self, op, g, em):
        inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        clamp = q.activation_range(ACTIVATION_OF[op.kind], out.scale, out.zero_point)
        params = em.params(requantize_params(ReluParams, inp, out, clamp, float_ratio=True))
        return unary_call(self.kernel, em, params, op, self.kernel_dims(op, g))
