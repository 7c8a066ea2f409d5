"""What every ONNX op converter shares: the converted tensors, the op registry, padding arithmetic."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from toolchain.registry import Registry

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

    def sub_name(self, name: str, suffix: str) -> str:
        """A unique name for a helper layer of the layer `name` (an op converted to several layers)."""
        unique, k = f"{name}_{suffix}", 1
        while unique in self._names:
            unique, k = f"{name}_{suffix}{k}", k + 1
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


# ---- padding -----------------------------------------------------------------------------------------

def same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TF/Keras "same" padding (the extra pixel goes to the end)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


Pads = tuple[tuple[int, int], tuple[int, int]]


def onnx_pads(attrs: dict, spatial: tuple[int, int], kernel, strides, dilations) -> Pads:
    """((top, bottom), (left, right)) from `pads` or `auto_pad`."""
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pairs = [same_pads(s, k, st, d) for s, k, st, d in zip(spatial, kernel, strides, dilations)]
        return tuple((b, a) if auto == "SAME_LOWER" else (a, b) for a, b in pairs)
    p = list(attrs.get("pads", [0, 0, 0, 0]))
    return (p[0], p[2]), (p[1], p[3])


def keras_padding(ctx: Context, x, pads, spatial, kernel, strides, dilations, name: str) -> tuple[Any, str]:
    """A Keras padding mode for `pads`, adding a ZeroPadding2D when neither "valid" nor "same" fits."""
    if all(v == 0 for pair in pads for v in pair):
        return x, "valid"
    same = tuple(same_pads(s, k, st, d) for s, k, st, d in zip(spatial, kernel, strides, dilations))
    if tuple(pads) == same:
        return x, "same"
    return ctx.keras.layers.ZeroPadding2D(pads, name=f"{name}_pad")(x), "valid"


def spatial(value: Value) -> tuple[int, int]:
    return int(value.tensor.shape[1]), int(value.tensor.shape[2])


def window(attrs: dict) -> tuple[tuple, tuple]:
    """(strides, dilations)."""
    return tuple(attrs.get("strides", [1, 1])), tuple(attrs.get("dilations", [1, 1]))


