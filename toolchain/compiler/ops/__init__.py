"""One module per TFLite operator: `check` (what we refuse and why), `macs`, `scratch_bytes`, `emit` (the C call
to `tm_<module>_s8`, in `firmware/kernels/<path>/tm_<module>_s8.c`)."""
from toolchain.compiler.ops.base import OPS, OpDef

# Importing the modules registers the ops.
from toolchain.compiler.ops import (  # noqa: E402,F401
    add, avg_pool2d, concatenation, conv2d, depthwise_conv2d, dequantize, fully_connected, gather, lut, max_pool2d,
    maximum, mean, minimum, mul, pad, prelu, quantize, reduce, relu, reshape, resize, softmax, split,
    squared_difference, strided_slice, sub, transpose, transpose_conv,
)

__all__ = ["OPS", "OpDef"]
