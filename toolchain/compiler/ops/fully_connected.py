from toolchain.compiler.ops.base import (
    OpDef, activation, check_activation, check_output_shape, check_weights, register, require_int8,
    weights_call,
)
from toolchain.compiler.ops.params import Activation, FullyConnectedParams, FullyConnectedQuant, Symbol


@register("FULLY_CONNECTED")
class FullyConnected(OpDef):
    kernel = "tm_fully_connected_s8"
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

    def kernel_dims(self, op, g):
        """input {batches, 1, 1, depth}, filter {units, 1, 1, depth}, output {batches, 1, 1, units}."""
        units, depth = g.tensors[op.inputs[1]].shape
        batches = g.tensors[op.inputs[0]].size // depth
        return (batches, 1, 1, depth), (units, 1, 1, depth), (batches, 1, 1, units)

    def scratch_bytes(self, op, g):
        return 0  # tm_fully_connected_s8_get_buffer_size (ref)

    def emit(self, op, g, em):
        inp, w, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
        # LiteRT's reference FC rescales in double: (double)s_in * (double)s_w / (double)s_out.
        scales = [inp.scale * s / out.scale for s in w.quant.scale]
        params = em.params(FullyConnectedParams(
            input_offset=-inp.zero_point, filter_offset=-w.zero_point, output_offset=out.zero_point,
            activation=Activation(*activation(op, out))))
        quant = em.params(FullyConnectedQuant(
            scale=Symbol(em.array("double", [repr(s) for s in scales], "fc_scale")),
            per_channel=int(w.quant.per_channel)))
        return weights_call(self.kernel, em, params, quant, op, self.kernel_dims(op, g))
