"""One module per TFLite operator: `check` (what we refuse and why), `macs`, `emit` (the C call)."""
from toolchain.compiler.ops.base import OPS, OpDef

# Importing the modules registers the ops.
from toolchain.compiler.ops import (  # noqa: E402,F401
    add, concatenation, conv2d, depthwise_conv2d, fully_connected, mean, pad, pooling, quantize, relu, reshape,
    softmax, strided_slice,
)

__all__ = ["OPS", "OpDef"]
