"""A float ONNX CNN (NCHW, e.g. exported from PyTorch) -> tf_keras model -> int8 .tflite.

Our own converter for a CNN subset (onnx2tf would pin numpy 1.26 / onnx 1.19 / onnxruntime 1.23, see
FACTS.md): Conv (group 1, or one group per input channel -> DepthwiseConv2D), Relu, Clip(0, max)
(ReLU6), BatchNormalization, Add, MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, Flatten,
Reshape to 2-D, Gemm, MatMul (+ Add of a bias, fused), Softmax, Concat (channel axis), Pad (constant 0,
spatial), Identity, Dropout. Each op is registered in ONNX_OPS with a static `check` (attributes,
constant inputs) and a `convert`; every unsupported op or attribute of the graph is listed in one error
before anything is built.

Layout: 4-D tensors are NCHW in ONNX and NHWC in Keras (and in the .tflite, as the compiler expects).
Weights are transposed accordingly (Conv [M, C, kh, kw] -> [kh, kw, C, M]; depthwise [C*m, 1, kh, kw]
-> [kh, kw, C, m]). An NCHW model input becomes an NHWC Keras input, so calibration data given in the
ONNX model's layout ([N, C, H, W]) is transposed to [N, H, W, C]; 4-D outputs come out NHWC. Flattening
a spatial map gives features in H, W, C order instead of ONNX's C, H, W: the converter records the
permutation and reorders the rows of the Gemm/MatMul that reads them, so no transpose op is needed.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from toolchain.errors import ToolchainError
from toolchain.registry import Registry
from toolchain.tf import import_tf

TOLERANCE = 1e-4


@dataclass
class Value:
    """A converted tensor: the Keras tensor, and for 2-D ones the feature order relative to ONNX."""

    tensor: Any
    perm: np.ndarray | None = None  # Keras feature j is ONNX feature perm[j]; None: same order

    @property
    def rank(self) -> int:
        return len(self.tensor.shape)


@dataclass
class Context:
    keras: Any
    constants: dict[str, np.ndarray]
    values: dict[str, Value] = field(default_factory=dict)
    outputs: set[str] = field(default_factory=set)  # graph output names
    opset: int = 17
    _names: set[str] = field(default_factory=set)

    def const(self, node, i: int) -> np.ndarray | None:
        if i >= len(node.input) or not node.input[i]:
            return None
        return self.constants.get(node.input[i])

    def value(self, node, i: int = 0) -> Value:
        return self.values[node.input[i]]

    def layer_name(self, node) -> str:
        """The graph output's name for the layer writing it (it becomes the .tflite signature name), else
        the node's; made a valid, unique Keras name."""
        base = node.output[0] if node.output[0] in self.outputs else (node.name or f"{node.op_type}_{node.output[0]}")
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", base).lstrip("_.-") or node.op_type.lower()
        unique, k = name, 1
        while unique in self._names:
            unique, k = f"{name}_{k}", k + 1
        self._names.add(unique)
        return unique

    def apply(self, layer, x, weights: list[np.ndarray] | None = None):
        """Call `layer` on `x` and set its weights."""
        y = layer(x)
        if weights is not None:
            layer.set_weights([np.asarray(w, np.float32) for w in weights])
        return y


@dataclass(frozen=True)
class OnnxOp:
    name: str
    check: Callable[[Any, dict, Context], list[str]]  # problems (empty when convertible)
    convert: Callable[[Any, dict, Context], Value]


ONNX_OPS: Registry[OnnxOp] = Registry("ONNX op")


def onnx_op(name: str, check: Callable | None = None):
    def decorator(convert):
        ONNX_OPS.register(name)(OnnxOp(name, check or (lambda node, attrs, ctx: []), convert))
        return convert

    return decorator


def attributes(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


# ---- padding -----------------------------------------------------------------------------------------

def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TF/Keras "same" padding (the extra pixel goes to the end)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _pads(attrs: dict, spatial: tuple[int, int], kernel, strides, dilations) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, bottom), (left, right)) from `pads` or `auto_pad`."""
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pairs = [_same_pads(s, k, st, d) for s, k, st, d in zip(spatial, kernel, strides, dilations)]
        return tuple((b, a) if auto == "SAME_LOWER" else (a, b) for a, b in pairs)
    p = list(attrs.get("pads", [0, 0, 0, 0]))
    return (p[0], p[2]), (p[1], p[3])


def _keras_padding(ctx: Context, x, pads, spatial, kernel, strides, dilations, name: str) -> tuple[Any, str]:
    """A Keras padding mode for `pads`, adding a ZeroPadding2D when neither "valid" nor "same" fits."""
    if all(v == 0 for pair in pads for v in pair):
        return x, "valid"
    same = tuple(_same_pads(s, k, st, d) for s, k, st, d in zip(spatial, kernel, strides, dilations))
    if tuple(pads) == same:
        return x, "same"
    return ctx.keras.layers.ZeroPadding2D(pads, name=f"{name}_pad")(x), "valid"


def _spatial(value: Value) -> tuple[int, int]:
    return int(value.tensor.shape[1]), int(value.tensor.shape[2])


def _window(attrs: dict) -> tuple[tuple, tuple]:
    """(strides, dilations)."""
    return tuple(attrs.get("strides", [1, 1])), tuple(attrs.get("dilations", [1, 1]))


# ---- ops ---------------------------------------------------------------------------------------------

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
    strides, dilations = _window(attrs)
    name = ctx.layer_name(node)
    pads = _pads(attrs, _spatial(x), kernel, strides, dilations)
    t, padding = _keras_padding(ctx, x.tensor, pads, _spatial(x), kernel, strides, dilations, name)
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


def _check_add(node, attrs, ctx) -> list[str]:
    if any(ctx.const(node, i) is not None for i in range(2)):
        return ["Add of a constant is supported only as the bias of a MatMul"]
    return []


@onnx_op("Add", _check_add)
def _add(node, attrs, ctx: Context) -> Value:
    a, b = ctx.value(node, 0), ctx.value(node, 1)
    if not _same_perm(a.perm, b.perm):
        raise ToolchainError(f"ONNX node {node.name!r}: Add of two differently ordered flattened maps")
    return Value(ctx.keras.layers.Add(name=ctx.layer_name(node))([a.tensor, b.tensor]), a.perm)


def _same_perm(a, b) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))


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
    pads = _pads(attrs, _spatial(x), kernel, strides, (1, 1))
    same = tuple(_same_pads(s, k, st, 1) for s, k, st in zip(_spatial(x), kernel, strides))
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
    return Value(cls(_spatial(x), name=ctx.layer_name(node))(x.tensor))  # [N, 1, 1, C] like ONNX's [N, C, 1, 1]


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
    return []


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
    if x.rank == 4 and axis in (1, -3) and (ctx.opset >= 13 or _spatial(x) == (1, 1)):
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


# ---- graph -------------------------------------------------------------------------------------------

def _opset(model) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=17)


def _fuse_matmul_bias(nodes: list, constants: dict) -> list:
    """MatMul followed by an Add of a constant vector -> one Gemm (a Dense with bias)."""
    import onnx

    consumers: dict[str, list] = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    fused, skip = [], set()
    for n in nodes:
        if id(n) in skip:
            continue
        users = consumers.get(n.output[0], []) if n.op_type == "MatMul" else []
        if len(users) == 1 and users[0].op_type == "Add":
            add = users[0]
            other = add.input[1] if add.input[0] == n.output[0] else add.input[0]
            bias = constants.get(other)
            if bias is not None and bias.ndim <= 2 and bias.size == bias.shape[-1]:
                fused.append(onnx.helper.make_node("Gemm", [n.input[0], n.input[1], other], list(add.output),
                                                   name=add.name or n.name))
                skip.add(id(add))
                continue
        fused.append(n)
    return fused


def _constants(graph) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    out = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            attrs = attributes(node)
            if "value" in attrs:
                out[node.output[0]] = numpy_helper.to_array(attrs["value"])
    return out


def problems_of(nodes: list, ctx: Context) -> list[str]:
    found = []
    for node in nodes:
        op = ONNX_OPS.get(node.op_type)
        where = f"{node.op_type} {node.name!r}" if node.name else node.op_type
        if op is None:
            found.append(f"{where}: operator {node.op_type} is not supported")
        else:
            found += [f"{where}: {p}" for p in op.check(node, attributes(node), ctx)]
    return found


def _input_shape(value_info) -> list[int | None]:
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else None for d in dims]


def onnx_to_keras(onnx_model, name: str = "onnx_model"):
    """A tf_keras model computing the same as `onnx_model` (an onnx.ModelProto), NHWC (see module docstring)."""
    _, keras = import_tf()
    graph = onnx_model.graph
    constants = _constants(graph)
    ctx = Context(keras, constants, outputs={o.name for o in graph.output}, opset=_opset(onnx_model))
    nodes = _fuse_matmul_bias([n for n in graph.node if n.op_type != "Constant"], constants)
    problems = problems_of(nodes, ctx)
    inputs = [i for i in graph.input if i.name not in constants]
    for i in inputs:
        shape = _input_shape(i)
        if len(shape) not in (2, 4) or any(d is None for d in shape[1:]):
            problems.append(f"input {i.name!r}: shape {shape}; only [N, C, H, W] or [N, features] with static sizes")
    if problems:
        raise ToolchainError(f"{len(problems)} ONNX node(s) cannot be converted:\n" +
                             "\n".join(f"  - {p}" for p in problems),
                             f"supported ONNX ops: {', '.join(ONNX_OPS)}")
    keras_inputs = []
    for i in inputs:
        shape = _input_shape(i)
        nhwc = (shape[2], shape[3], shape[1]) if len(shape) == 4 else (shape[1],)
        tensor = keras.Input(nhwc, name=re.sub(r"[^A-Za-z0-9_.-]", "_", i.name))
        keras_inputs.append(tensor)
        ctx.values[i.name] = Value(tensor)
    for node in nodes:
        value = ONNX_OPS.get(node.op_type).convert(node, attributes(node), ctx)
        ctx.values[node.output[0]] = value
    outputs = []
    for o in graph.output:
        value = ctx.values[o.name]
        if value.perm is not None and not np.array_equal(value.perm, np.arange(value.perm.size)):
            raise ToolchainError(f"output {o.name!r} is a flattened spatial map: its feature order would differ "
                                 "from ONNX's (C, H, W)", "end the model with a Gemm/MatMul or a pooled map")
        outputs.append(value.tensor)
    return keras.Model(keras_inputs, outputs, name=re.sub(r"[^A-Za-z0-9_.-]", "_", name))


# ---- checking and the whole import -------------------------------------------------------------------

def to_nhwc(x: np.ndarray) -> np.ndarray:
    return np.transpose(x, (0, 2, 3, 1)) if x.ndim == 4 else x


def to_nchw(x: np.ndarray) -> np.ndarray:
    return np.transpose(x, (0, 3, 1, 2)) if x.ndim == 4 else x


def compare_with_onnxruntime(onnx_model, keras_model, calibration_nchw: np.ndarray) -> float:
    """The largest |Keras - onnxruntime| over all outputs for the calibration samples (ONNX layout in)."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    (onnx_input,) = session.get_inputs()
    want = session.run(None, {onnx_input.name: calibration_nchw.astype(np.float32)})
    got = keras_model.predict(to_nhwc(calibration_nchw), verbose=0)
    got = got if isinstance(got, list) else [got]
    return max(float(np.max(np.abs(to_nchw(g) - w.reshape(to_nchw(g).shape)))) for g, w in zip(got, want))


@dataclass(frozen=True)
class OnnxImport:
    keras_model: Any
    max_abs_diff: float
    tflite: bytes | None
    calibration_nhwc: np.ndarray


def load_onnx(path: Path | str):
    import onnx

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises its own ValidationError, protobuf DecodeError, OSError...
        raise ToolchainError(f"cannot read ONNX model {path}: {exc}") from exc
    return model


def import_onnx(onnx_model, calibration_nchw: np.ndarray, tflite_path: Path | str | None = None, *,
                tolerance: float = TOLERANCE, quantize: bool = True) -> OnnxImport:
    """Convert, check against onnxruntime on the calibration data (in the ONNX model's layout), then PTQ
    with `convert_int8` on the same data transposed to NHWC."""
    from toolchain.export.tflite import convert_int8

    if isinstance(onnx_model, (str, Path)):
        name = Path(onnx_model).stem
        onnx_model = load_onnx(onnx_model)
    else:
        name = onnx_model.graph.name or "onnx_model"
    keras_model = onnx_to_keras(onnx_model, name)
    if len(keras_model.inputs) != 1:
        raise ToolchainError("ONNX import supports single-input models only")
    x = np.asarray(calibration_nchw, np.float32)
    shape = _input_shape([i for i in onnx_model.graph.input if i.name not in _constants(onnx_model.graph)][0])
    if x.ndim != len(shape) or tuple(x.shape[1:]) != tuple(shape[1:]):
        raise ToolchainError(f"calibration data has shape {x.shape}, the ONNX input is {shape}",
                             "give samples in the ONNX model's layout ([N, C, H, W] for images)")
    diff = compare_with_onnxruntime(onnx_model, keras_model, x)
    if not diff <= tolerance:
        raise ToolchainError(f"the converted Keras model differs from onnxruntime by {diff:.3g} (> {tolerance:g})")
    nhwc = to_nhwc(x)
    flatbuffer = convert_int8(keras_model, nhwc, tflite_path) if quantize else None
    return OnnxImport(keras_model, diff, flatbuffer, nhwc)
