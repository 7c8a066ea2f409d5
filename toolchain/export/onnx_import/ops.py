"""Converters of the CNN core: Conv, activations clamps, BatchNormalization, pooling, Flatten/Reshape,
Gemm/MatMul, Softmax, Concat, Pad, Identity, Dropout (arithmetic, activations and resampling: `arith`,
`resample`)."""
from __future__ import annotations

import math

import numpy as np

from toolchain.errors import ToolchainError
from toolchain.export.onnx_import.context import Context, Value, keras_padding, onnx_op, onnx_pads, same_pads, \
    spatial, window


def _check_conv(node, attrs, ctx) -> list[str]:
    w = ctx.const(node, 1)
    if w is None:
        return ["weights must be a constant (initializer)"]
    if w.ndim != 4:
        return [f"only 2-D convolutions are supported (weights of rank {w.ndim})"]
    problems = []
    group = attrs.get("group", 1)
    if group != 1 and w.shape[1] != 1:
        problems.append(f"grouped convolution (group {group}, {w.shape[1]} channels per group); only group 1 or "
                        "depthwise (one group per input channel)")
    if len(node.input) > 2 and node.input[2] and ctx.const(node, 2) is None:
        problems.append("bias must be a constant")
    if group != 1 and tuple(attrs.get("strides", [1, 1])) != (1, 1) and tuple(attrs.get("dilations", [1, 1])) != (1, 1):
        problems.append("depthwise convolution with both strides and dilations")
    return problems


@onnx_op("Conv", _check_conv)
def _conv(node, attrs, ctx: Context) -> Value:
    x = ctx.value(node)
    w, b = ctx.const(node, 1), ctx.const(node, 2)
    kernel = tuple(int(k) for k in w.shape[2:])
    strides, dilations = window(attrs)
    name = ctx.layer_name(node)
    pads = onnx_pads(attrs, spatial(x), kernel, strides, dilations)
    t, padding = keras_padding(ctx, x.tensor, pads, spatial(x), kernel, strides, dilations, name)
    group = attrs.get("group", 1)
    common = dict(kernel_size=kernel, strides=strides, padding=padding, dilation_rate=dilations,
                  use_bias=b is not None, name=name)
    if group == 1:
        layer = ctx.keras.layers.Conv2D(int(w.shape[0]), **common)
        kernel_weights = w.transpose(2, 3, 1, 0)
    else:
        multiplier = int(w.shape[0]) // group
        layer = ctx.keras.layers.DepthwiseConv2D(depth_multiplier=multiplier, **common)
        kernel_weights = w.reshape(group, multiplier, *kernel).transpose(2, 3, 0, 1)
    return Value(ctx.apply(layer, t, [kernel_weights] + ([b] if b is not None else [])))


def _elementwise(value: Value, layer, ctx: Context) -> Value:
    return Value(layer(value.tensor), value.perm)


@onnx_op("Relu")
def _relu(node, attrs, ctx: Context) -> Value:
    return _elementwise(ctx.value(node), ctx.keras.layers.ReLU(name=ctx.layer_name(node)), ctx)


def _clip_bounds(node, attrs, ctx) -> tuple[float | None, float | None]:
    if ctx.opset < 11:
        return attrs.get("min"), attrs.get("max")
    lo, hi = ctx.const(node, 1), ctx.const(node, 2)
    return (None if lo is None else float(lo)), (None if hi is None else float(hi))


def _check_clip(node, attrs, ctx) -> list[str]:
    for i in (1, 2):
        if i < len(node.input) and node.input[i] and ctx.const(node, i) is None:
            return ["min/max must be constants"]
    lo, _ = _clip_bounds(node, attrs, ctx)
    return [] if lo == 0.0 else [f"only Clip(min=0, max) (a ReLU / ReLU6) is supported, min is {lo}"]


@onnx_op("Clip", _check_clip)
def _clip(node, attrs, ctx: Context) -> Value:
    _, hi = _clip_bounds(node, attrs, ctx)
    return _elementwise(ctx.value(node), ctx.keras.layers.ReLU(max_value=hi, name=ctx.layer_name(node)), ctx)


def _check_bn(node, attrs, ctx) -> list[str]:
    if any(ctx.const(node, i) is None for i in range(1, 5)):
        return ["scale, bias, mean and variance must be constants"]
    return ["training_mode is not supported"] if attrs.get("training_mode", 0) else []


@onnx_op("BatchNormalization", _check_bn)
def _batchnorm(node, attrs, ctx: Context) -> Value:
    x = ctx.value(node)
    params = [ctx.const(node, i).reshape(-1) for i in range(1, 5)]  # scale, bias, mean, var
    if x.perm is not None:
        params = [p[x.perm] if p.size == x.perm.size else p for p in params]
    layer = ctx.keras.layers.BatchNormalization(axis=-1, epsilon=float(attrs.get("epsilon", 1e-5)),
                                                momentum=float(attrs.get("momentum", 0.9)), name=ctx.layer_name(node))
    return Value(ctx.apply(layer, x.tensor, params), x.perm)


def _check_pool(node, attrs, ctx) -> list[str]:
    problems = []
    if len(attrs.get("kernel_shape", [])) != 2:
        problems.append("only 2-D pooling is supported")
    if attrs.get("ceil_mode", 0):
        problems.append("ceil_mode=1 is not supported")
    if tuple(attrs.get("dilations", [1, 1])) != (1, 1):
        problems.append("dilated pooling is not supported")
    if attrs.get("storage_order", 0):
        problems.append("storage_order=1 is not supported")
    return problems


def _pool(node, attrs, ctx: Context, average: bool) -> Value:
    x = ctx.value(node)
    kernel = tuple(attrs["kernel_shape"])
    strides = tuple(attrs.get("strides", [1, 1]))
    name = ctx.layer_name(node)
    pads = onnx_pads(attrs, spatial(x), kernel, strides, (1, 1))
    same = tuple(same_pads(s, k, st, 1) for s, k, st in zip(spatial(x), kernel, strides))
    t, padding = x.tensor, "valid"
    if any(v for pair in pads for v in pair):
        include = average and attrs.get("count_include_pad", 0)
        if tuple(pads) == same and not include:
            padding = "same"  # Keras' "same" pooling ignores the padding, as ONNX's count_include_pad=0 does
        elif average and include:
            t = ctx.keras.layers.ZeroPadding2D(pads, name=f"{name}_pad")(t)
        else:
            raise ToolchainError(f"ONNX node {node.name!r} ({node.op_type}): padding {pads} is not TF 'same' padding",
                                 "pad the input explicitly or use pads matching 'same'")
    cls = ctx.keras.layers.AveragePooling2D if average else ctx.keras.layers.MaxPooling2D
    return Value(cls(kernel, strides=strides, padding=padding, name=name)(t))


@onnx_op("MaxPool", _check_pool)
def _maxpool(node, attrs, ctx: Context) -> Value:
    if len(node.output) > 1 and node.output[1]:
        raise ToolchainError(f"ONNX node {node.name!r}: MaxPool's indices output is not supported")
    return _pool(node, attrs, ctx, average=False)


@onnx_op("AveragePool", _check_pool)
def _avgpool(node, attrs, ctx: Context) -> Value:
    return _pool(node, attrs, ctx, average=True)


def _global_pool(node, ctx: Context, average: bool) -> Value:
    x = ctx.value(node)
    cls = ctx.keras.layers.AveragePooling2D if average else ctx.keras.layers.MaxPooling2D
    return Value(cls(spatial(x), name=ctx.layer_name(node))(x.tensor))  # [N, 1, 1, C] like ONNX's [N, C, 1, 1]


@onnx_op("GlobalAveragePool")
def _gap(node, attrs, ctx: Context) -> Value:
    return _global_pool(node, ctx, average=True)


@onnx_op("GlobalMaxPool")
def _gmp(node, attrs, ctx: Context) -> Value:
    return _global_pool(node, ctx, average=False)


def _flatten_value(node, ctx: Context, x: Value) -> Value:
    if x.rank == 2:
        return x
    h, w, c = (int(d) for d in x.tensor.shape[1:])
    # Flatten, not Reshape((c,)): Keras' Reshape keeps the batch size dynamic, which converts to
    # SHAPE / STRIDED_SLICE / PACK ops computing the shape at run time instead of one static RESHAPE.
    flat = ctx.keras.layers.Flatten(name=ctx.layer_name(node))(x.tensor)
    perm = None if h * w == 1 else np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
    return Value(flat, perm)


@onnx_op("Flatten", lambda node, attrs, ctx: [] if attrs.get("axis", 1) == 1 else ["only axis=1 is supported"])
def _flatten(node, attrs, ctx: Context) -> Value:
    return _flatten_value(node, ctx, ctx.value(node))


def _check_reshape(node, attrs, ctx) -> list[str]:
    shape = ctx.const(node, 1)
    if shape is None:
        return ["the target shape must be a constant"]
    if shape.size != 2:
        return [f"only reshapes to 2-D [N, features] are supported, target {shape.tolist()}"]
    return ["allowzero=1 is not supported"] if attrs.get("allowzero", 0) else []


@onnx_op("Reshape", _check_reshape)
def _reshape(node, attrs, ctx: Context) -> Value:
    x = ctx.value(node)
    features = math.prod(int(d) for d in x.tensor.shape[1:])
    target = [int(v) for v in ctx.const(node, 1)]
    if target[1] not in (-1, features) or target == [-1, -1]:
        raise ToolchainError(f"ONNX node {node.name!r}: Reshape to {target} is not [N, {features}]")
    return _flatten_value(node, ctx, x)


def _check_gemm(node, attrs, ctx) -> list[str]:
    problems = []
    if ctx.const(node, 1) is None or ctx.const(node, 1).ndim != 2:
        problems.append("B must be a constant matrix")
    if len(node.input) > 2 and node.input[2] and ctx.const(node, 2) is None:
        problems.append("C must be a constant")
    if attrs.get("transA", 0):
        problems.append("transA=1 is not supported")
    return problems


@onnx_op("Gemm", _check_gemm)
def _gemm(node, attrs, ctx: Context) -> Value:
    x = ctx.value(node)
    if x.rank != 2:
        raise ToolchainError(f"ONNX node {node.name!r}: Gemm of a rank-{x.rank} input")
    b = ctx.const(node, 1)
    kernel = float(attrs.get("alpha", 1.0)) * (b.T if attrs.get("transB", 0) else b)
    c = ctx.const(node, 2)
    if x.perm is not None:
        kernel = kernel[x.perm]
    units = kernel.shape[1]
    weights = [kernel]
    if c is not None:
        weights.append(np.broadcast_to(float(attrs.get("beta", 1.0)) * c.reshape(-1), (units,)))
    layer = ctx.keras.layers.Dense(units, use_bias=c is not None, name=ctx.layer_name(node))
    return Value(ctx.apply(layer, x.tensor, weights))


@onnx_op("MatMul", lambda node, attrs, ctx: [] if ctx.const(node, 1) is not None and ctx.const(node, 1).ndim == 2
         else ["the second input must be a constant matrix"])
def _matmul(node, attrs, ctx: Context) -> Value:
    return _gemm(node, {}, ctx)


@onnx_op("Softmax")
def _softmax(node, attrs, ctx: Context) -> Value:
    x = ctx.value(node)
    axis = attrs.get("axis", -1 if ctx.opset >= 13 else 1)
    if x.rank == 2 and axis in (1, -1):
        return Value(ctx.keras.layers.Softmax(name=ctx.layer_name(node))(x.tensor), x.perm)
    if x.rank == 4 and axis in (1, -3) and (ctx.opset >= 13 or spatial(x) == (1, 1)):
        return Value(ctx.keras.layers.Softmax(axis=-1, name=ctx.layer_name(node))(x.tensor))
    raise ToolchainError(f"ONNX node {node.name!r}: Softmax over axis {axis} of a rank-{x.rank} tensor",
                         "only the channel (class) axis is supported")


@onnx_op("Concat")
def _concat(node, attrs, ctx: Context) -> Value:
    values = [ctx.values[name] for name in node.input]
    rank, axis = values[0].rank, attrs.get("axis")
    if axis not in (1, 1 - rank) or any(v.perm is not None for v in values):
        raise ToolchainError(f"ONNX node {node.name!r}: Concat along axis {axis}", "only the channel axis (1)")
    return Value(ctx.keras.layers.Concatenate(axis=-1, name=ctx.layer_name(node))([v.tensor for v in values]))


def _pad_amounts(node, attrs, ctx) -> np.ndarray | None:
    return np.asarray(attrs["pads"]) if ctx.opset < 11 and "pads" in attrs else ctx.const(node, 1)


def _check_pad(node, attrs, ctx) -> list[str]:
    mode = attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    problems = [] if mode == "constant" else [f"mode {mode!r} (only 'constant')"]
    pads = _pad_amounts(node, attrs, ctx)
    if pads is None:
        return problems + ["pads must be a constant"]
    value = attrs.get("value", 0.0) if ctx.opset < 11 else ctx.const(node, 2)
    if value is not None and float(np.asarray(value).reshape(-1)[0] if np.size(value) else 0.0) != 0.0:
        problems.append("only zero padding is supported")
    if len(node.input) > 3 and node.input[3]:
        problems.append("the axes input is not supported")
    if pads.size != 8 or pads[[0, 1, 4, 5]].any() or (pads < 0).any():
        problems.append(f"only non-negative padding of H and W of a 4-D tensor, got {pads.tolist()}")
    return problems


@onnx_op("Pad", _check_pad)
def _pad(node, attrs, ctx: Context) -> Value:
    p = [int(v) for v in _pad_amounts(node, attrs, ctx)]
    layer = ctx.keras.layers.ZeroPadding2D(((p[2], p[6]), (p[3], p[7])), name=ctx.layer_name(node))
    return Value(layer(ctx.value(node).tensor))


@onnx_op("Identity")
def _identity(node, attrs, ctx: Context) -> Value:
    return ctx.value(node)


@onnx_op("Dropout")
def _dropout(node, attrs, ctx: Context) -> Value:
    return ctx.value(node)  # inference: the identity

