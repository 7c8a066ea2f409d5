"""Element-wise converters: Add/Sub/Mul of two tensors or of a constant, Div by a constant, Sigmoid,
HardSigmoid, HardSwish.

Keras has no layer holding a constant operand, so a constant becomes layer weights: a scalar is a
Rescaling (x * scale + offset), a per-channel one on an NCHW map ([C, 1, 1] or [1, C, 1, 1]) a 1x1
DepthwiseConv2D with bias (one scale and shift per channel). Both quantize to int8 ops the compiler has
(MUL/ADD by a constant, DEPTHWISE_CONV_2D). The hard activations are built from ReLU6 like PyTorch
defines them, so no Lambda layer is needed and the saved Keras model loads without running code.
"""
from __future__ import annotations

import numpy as np

from toolchain.errors import ToolchainError
from toolchain.export.onnx_import.context import Context, Value, onnx_op

# (op, constant on the left?) -> how (scale, shift) of x follow from the constant c
_AFFINE = {
    ("Add", False): lambda c: (np.ones_like(c), c), ("Add", True): lambda c: (np.ones_like(c), c),
    ("Mul", False): lambda c: (c, np.zeros_like(c)), ("Mul", True): lambda c: (c, np.zeros_like(c)),
    ("Sub", False): lambda c: (np.ones_like(c), -c), ("Sub", True): lambda c: (-np.ones_like(c), c),
    ("Div", False): lambda c: (1.0 / c, np.zeros_like(c)),
}


def _constant_operand(node, ctx) -> tuple[int | None, np.ndarray | None]:
    """(index of the constant input, its value) or (None, None) when both inputs are tensors."""
    for i in (1, 0):
        c = ctx.const(node, i)
        if c is not None:
            return i, np.asarray(c, np.float64)
    return None, None


def _per_channel(c: np.ndarray) -> bool:
    """A constant broadcasting along the channel axis of an NCHW map only."""
    return c.ndim in (3, 4) and c.shape[-2:] == (1, 1) and (c.ndim == 3 or c.shape[0] == 1)


def _check_arith(node, attrs, ctx) -> list[str]:
    if len(node.input) != 2:
        return ["expects two inputs"]
    i, c = _constant_operand(node, ctx)
    if i is None:
        return ["division of two tensors is not supported (only by a constant)"] if node.op_type == "Div" else []
    if ctx.const(node, 1 - i) is not None:
        return ["both inputs are constants"]
    if (node.op_type, i == 0) not in _AFFINE:
        return ["only x / constant is supported, not constant / x"]
    problems = []
    if c.size != 1 and not _per_channel(c):
        problems.append(f"a constant of shape {list(c.shape)}: only a scalar or one value per channel "
                        "([C, 1, 1] or [1, C, 1, 1])")
    if not np.all(np.isfinite(c)) or (node.op_type == "Div" and np.any(c == 0)):
        problems.append("the constant must be finite (and non-zero for Div)")
    return problems


def _same_perm(a, b) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))


def _affine(ctx: Context, x: Value, scale: np.ndarray, shift: np.ndarray, name: str) -> Value:
    """x * scale + shift, scalar or per channel."""
    if scale.size == 1:
        layer = ctx.keras.layers.Rescaling(float(scale.reshape(-1)[0]), float(shift.reshape(-1)[0]), name=name)
        return Value(layer(x.tensor), x.perm)
    channels = int(x.tensor.shape[-1])
    if x.rank != 4 or scale.size != channels:
        raise ToolchainError(f"ONNX node {name!r}: {scale.size} per-channel constants for a tensor of shape "
                             f"{list(x.tensor.shape)}")
    layer = ctx.keras.layers.DepthwiseConv2D(1, use_bias=True, name=name)
    return Value(ctx.apply(layer, x.tensor, [scale.reshape(1, 1, channels, 1), shift.reshape(channels)]))


def _arith(node, attrs, ctx: Context) -> Value:
    i, c = _constant_operand(node, ctx)
    name = ctx.layer_name(node)
    if i is not None:
        scale, shift = _AFFINE[(node.op_type, i == 0)](c)
        return _affine(ctx, ctx.value(node, 1 - i), scale, shift, name)
    a, b = ctx.value(node, 0), ctx.value(node, 1)
    if not _same_perm(a.perm, b.perm):
        raise ToolchainError(f"ONNX node {node.name!r}: {node.op_type} of two differently ordered flattened maps")
    cls = {"Add": ctx.keras.layers.Add, "Sub": ctx.keras.layers.Subtract, "Mul": ctx.keras.layers.Multiply}
    return Value(cls[node.op_type](name=name)([a.tensor, b.tensor]), a.perm)


for _op in ("Add", "Sub", "Mul", "Div"):
    onnx_op(_op, _check_arith)(_arith)


@onnx_op("Sigmoid")
def _sigmoid(node, attrs, ctx: Context) -> Value:
    x = ctx.value(node)
    return Value(ctx.keras.layers.Activation("sigmoid", name=ctx.layer_name(node))(x.tensor), x.perm)


def _hard_sigmoid(ctx: Context, x, alpha: float, beta: float, name: str, last_name: str):
    """clip(alpha * x + beta, 0, 1) as relu6(6 alpha x + 6 beta) / 6."""
    layers = ctx.keras.layers
    y = layers.Rescaling(6.0 * alpha, 6.0 * beta, name=ctx.sub_name(name, "affine"))(x)
    y = layers.ReLU(6.0, name=ctx.sub_name(name, "relu6"))(y)
    return layers.Rescaling(1.0 / 6.0, name=last_name)(y)


def _check_hard_sigmoid(node, attrs, ctx) -> list[str]:
    values = (attrs.get("alpha", 0.2), attrs.get("beta", 0.5))
    return [] if all(np.isfinite(v) for v in values) else ["alpha and beta must be finite"]


@onnx_op("HardSigmoid", _check_hard_sigmoid)
def _hardsigmoid(node, attrs, ctx: Context) -> Value:
    x, name = ctx.value(node), ctx.layer_name(node)
    y = _hard_sigmoid(ctx, x.tensor, float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5)), name, name)
    return Value(y, x.perm)


@onnx_op("HardSwish")
def _hardswish(node, attrs, ctx: Context) -> Value:
    """x * HardSigmoid(x; 1/6, 1/2), as torch.nn.Hardswish."""
    x, name = ctx.value(node), ctx.layer_name(node)
    gate = _hard_sigmoid(ctx, x.tensor, 1.0 / 6.0, 0.5, name, ctx.sub_name(name, "gate"))
    return Value(ctx.keras.layers.Multiply(name=name)([x.tensor, gate]), x.perm)
