import math
import sys

import numpy as np

from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import (
    INT16_DTYPES, MAX_SHIFT, OpDef, activation, bias_id, check_activation, check_output_shape, check_s16_accumulator,
    check_weights, is_int16, register, require_int8, weights_call,
)
from toolchain.compiler.ops.params import (
    Activation, FullyConnectedParams, FullyConnectedQuant, FullyConnectedS16Quant, Symbol,
)
from toolchain.errors import ToolchainError


@register("FULLY_CONNECTED")
class FullyConnected(OpDef):
    constraints = ("int8, weights per tensor or per channel, any number of rows, not shuffled; LiteRT's single "
                   "rounding or tflite-micro's double rounding (--reference); int16 activations with int8 weights "
                   "and an int64 bias (16x8, LiteRT's rounding)")
    kernel = "tm_fully_connected_s8"
    kernel_s16 = "tm_fully_connected_s16"
    num_inputs = (2, 3)
    optional_inputs = frozenset({2})

    def check(self, op, g):
        problems = require_int8(g, op, dtypes=INT16_DTYPES) + check_activation(op)
        inp, w = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
        if len(w.shape) != 2:
            return problems + [f"weights '{w.name}' must be 2-D [out, in], got {list(w.shape)}"]
        units, depth = w.shape
        int16 = is_int16(op, g)
        problems += check_weights(g, op, 1, 0, units, bias_dtype="int64" if int16 else "int32")
        if int16 and not problems:
            problems += check_s16_accumulator(op, g, depth)
        if not problems:
            problems += check_scales(rescales(inp, w, g.tensors[op.outputs[0]]))
        if not problems and not int16:  # the int16 kernel reproduces LiteRT's conversion of any product
            problems += check_product_range(op, g, rescales(inp, w, g.tensors[op.outputs[0]]))
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
        params = em.params(fc_params(op, g))
        if is_int16(op, g):
            return self.emit_s16(op, g, em, params, rescales(inp, w, out))
        if em.reference == "tflm":
            return weights_call(f"{self.kernel}_tflm", em, params, em.quant(*tflm_multipliers(rescales(inp, w, out))),
                                op, self.kernel_dims(op, g))
        mantissas, exponents = zip(*map(decompose_scale, rescales(inp, w, out)))
        quant = em.params(FullyConnectedQuant(
            mantissa_hi=Symbol(em.array("uint32_t", [m >> 32 for m in mantissas], "fc_mantissa_hi")),
            mantissa_lo=Symbol(em.array("uint32_t", [m & 0xFFFFFFFF for m in mantissas], "fc_mantissa_lo")),
            exponent=Symbol(em.array("int32_t", exponents, "fc_exponent")),
            per_channel=int(w.quant.per_channel)))
        return weights_call(self.kernel, em, params, quant, op, self.kernel_dims(op, g))

    def emit_s16(self, op, g, em, params: str, scales: list[float]) -> str:
        """The scales as exact double literals: LiteRT rescales the int64 accumulator in double."""
        per_channel = g.tensors[op.inputs[1]].quant.per_channel
        quant = em.params(FullyConnectedS16Quant(
            scale=Symbol(em.array("double", [s.hex() for s in scales], "fc_scale")), per_channel=int(per_channel)))
        return weights_call(self.kernel_s16, em, params, quant, op, self.kernel_dims(op, g), int16=True)


def fc_params(op, g) -> FullyConnectedParams:
    inp, w, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    return FullyConnectedParams(input_offset=-inp.zero_point, filter_offset=-w.zero_point,
                                output_offset=out.zero_point, activation=Activation(*activation(op, out)))


def tflm_multipliers(scales: list[float]) -> tuple[list[int], list[int]]:
    """tflite-micro's (multiplier, shift) per scale: TFLite QuantizeMultiplier of the same double scale."""
    pairs = [q.quantize_multiplier(s) for s in scales]
    if max(s for _, s in pairs) > MAX_SHIFT:
        raise ToolchainError(f"the FULLY_CONNECTED rescale factor {max(scales):.3g} is too large for "
                             "tflite-micro's (multiplier, shift) rounding", "compile with --reference litert")
    return [m for m, _ in pairs], [s for _, s in pairs]


def rescales(inp, w, out) -> list[float]:
    """LiteRT's reference FC rescales in double: (double)s_in * (double)s_w[c] / (double)s_out."""
    return [inp.scale * s / out.scale for s in w.quant.scale]


def check_scales(scales) -> list[str]:
    """The kernel emulates the double multiply for positive normal double scales (where no product with
    an int32 is subnormal); float32 tensor scales always give one, so this guards hand-made graphs."""
    bad = [s for s in scales if not (math.isfinite(s) and s >= sys.float_info.min)]
    if bad:
        return [f"the output rescale factor {bad[0]!r} (input scale * weight scale / output scale) is not a "
                f"positive, finite, normal double (>= {sys.float_info.min:.3g})"]
    return []


def check_product_range(op, g, scales) -> list[str]:
    """The rescaled accumulator must fit an int32 for every input (the kernels, like LiteRT's reference, take
    round(acc * scale) as an int32): refused when scale * the largest possible |acc| reaches 2^31. Trained
    models are orders of magnitude below it (scales < 1); a larger factor means scales out of all proportion."""
    w = g.tensors[op.inputs[1]]
    bias = bias_id(op, 2)
    largest_bias = int(np.max(np.abs(g.tensors[bias].data.astype(np.int64)))) if bias is not None else 0
    largest_acc = w.shape[1] * 255 * 128 + largest_bias  # |input + input_offset| <= 255, |w| <= 128
    worst = max(scales)
    if worst * largest_acc >= 2**31:
        return [f"the output rescale factor {worst:.3g} (input scale * weight scale / output scale) is too large: "
                "the rescaled accumulator could overflow int32 (the tensors' quantization scales are out of "
                "proportion)"]
    return []


def decompose_scale(scale: float) -> tuple[int, int]:
    """A positive normal double as (m, e), scale == m * 2^e exactly, m a 53-bit integer in [2^52, 2^53)."""
    fraction, exponent = math.frexp(scale)  # fraction in [0.5, 1): 53 bits, so the product is exact
    return int(fraction * (1 << 53)), exponent - 53
