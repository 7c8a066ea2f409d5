"""Converters that change a map's size or layout: Resize/Upsample (integer factors), ConvTranspose,
ReduceMean over H and W, Transpose of a 4-D map."""
from __future__ import annotations

import numpy as np

from toolchain.errors import ToolchainError
from toolchain.export.onnx_import.context import Context, Value, onnx_op, spatial


def _text(attrs: dict, key: str, default: str) -> str:
    value = attrs.get(key, default)
    return value.decode() if isinstance(value, bytes) else value


# ---- Resize ------------------------------------------------------------------------------------------

# (mode, coordinate_transformation_mode, nearest_mode) -> Keras UpSampling2D interpolation; with an integer
# factor these pick the same source pixels (nearest) or weights (linear) as TF's half-pixel resize.
_RESIZE_MODES = {
    ("nearest", "asymmetric", "floor"): "nearest",
    ("nearest", "half_pixel", "round_prefer_floor"): "nearest",
    ("nearest", "pytorch_half_pixel", "round_prefer_floor"): "nearest",
    ("linear", "half_pixel", None): "bilinear",
    ("linear", "pytorch_half_pixel", None): "bilinear",
}


def _resize_mode(node, attrs) -> tuple[str, str, str | None]:
    mode = _text(attrs, "mode", "nearest")
    if node.op_type == "Upsample":
        return mode, "asymmetric", "floor" if mode == "nearest" else None
    ctm = _text(attrs, "coordinate_transformation_mode", "half_pixel")
    return mode, ctm, _text(attrs, "nearest_mode", "round_prefer_floor") if mode == "nearest" else None


def _resize_factors(node, ctx) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(scales, sizes), whichever the node gives as a non-empty constant."""
    scale_index = 1 if node.op_type == "Upsample" or ctx.opset < 11 else 2
    scales, sizes = ctx.const(node, scale_index), ctx.const(node, 3) if scale_index == 2 else None
    return (scales if scales is not None and scales.size else None), (sizes if sizes is not None and sizes.size
                                                                      else None)


def _check_resize(node, attrs, ctx) -> list[str]:
    problems = []
    if _resize_mode(node, attrs) not in _RESIZE_MODES:
        problems.append("mode/coordinate_transformation_mode/nearest_mode {} (supported: {})".format(
            "/".join(str(v) for v in _resize_mode(node, attrs)),
            "; ".join("/".join(str(v) for v in key if v) for key in _RESIZE_MODES)))
    policy = _text(attrs, "keep_aspect_ratio_policy", "stretch")
    if attrs.get("antialias", 0) or attrs.get("axes") or policy != "stretch":
        problems.append("antialias, axes and keep_aspect_ratio_policy are not supported")
    scales, sizes = _resize_factors(node, ctx)
    if scales is None and sizes is None:
        problems.append("scales or sizes must be a constant")
    elif scales is not None and (scales.size != 4 or list(scales[:2]) != [1, 1] or np.any(scales[2:] < 1)
                                 or np.any(scales[2:] != np.round(scales[2:])) or np.any(scales[2:] > 64)):
        problems.append(f"scales {scales.tolist()}: only whole factors 1..64 of H and W of an NCHW map")
    elif sizes is not None and sizes.size != 4:
        problems.append(f"sizes {sizes.tolist()}: only NCHW maps")
    return problems


def _resize(node, attrs, ctx: Context) -> Value:
    x = ctx.value(node)
    scales, sizes = _resize_factors(node, ctx)
    h, w = spatial(x)
    if scales is not None:
        factors = (int(scales[2]), int(scales[3]))
    else:
        if int(sizes[1]) != int(x.tensor.shape[-1]):
            raise ToolchainError(f"ONNX node {node.name!r}: Resize changes the channel count")
        factors = (int(sizes[2]) // h, int(sizes[3]) // w)
        if factors[0] < 1 or factors[1] < 1 or factors[0] * h != sizes[2] or factors[1] * w != sizes[3]:
            raise ToolchainError(f"ONNX node {node.name!r}: Resize from {h}x{w} to {int(sizes[2])}x{int(sizes[3])} "
                                 "is not a whole factor")
    interpolation = _RESIZE_MODES[_resize_mode(node, attrs)]
    layer = ctx.keras.layers.UpSampling2D(factors, interpolation=interpolation, name=ctx.layer_name(node))
    return Value(layer(x.tensor))


for _op in ("Resize", "Upsample"):
    onnx_op(_op, _check_resize)(_resize)


# ---- ConvTranspose -----------------------------------------------------------------------------------

def _check_conv_transpose(node, attrs, ctx) -> list[str]:
    w = ctx.const(node, 1)
    if w is None or w.ndim != 4:
        return ["weights must be a constant of rank 4 (a 2-D transposed convolution)"]
    problems = []
    if attrs.get("group", 1) != 1:
        problems.append("only group 1")
    if tuple(attrs.get("dilations", [1, 1])) != (1, 1):
        problems.append("dilations are not supported")
    if _text(attrs, "auto_pad", "NOTSET") != "NOTSET" or "output_shape" in attrs:
        problems.append("auto_pad and output_shape are not supported (give pads and output_padding)")
    if len(node.input) > 2 and node.input[2] and ctx.const(node, 2) is None:
        problems.append("bias must be a constant")
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    extra = list(attrs.get("output_padding", [0, 0]))
    strides = list(attrs.get("strides", [1, 1]))
    kernel = [int(k) for k in w.shape[2:]]
    if len(pads) != 4 or len(extra) != 2 or len(strides) != 2 or min(pads + extra) < 0 or min(strides) < 1:
        problems.append(f"pads {pads}, output_padding {extra}, strides {strides}")
    elif any(pads[2 + i] + max(strides[i] - kernel[i], 0) < extra[i] for i in range(2)):
        problems.append("output_padding beyond the end padding")
    return problems


@onnx_op("ConvTranspose", _check_conv_transpose)
def _conv_transpose(node, attrs, ctx: Context) -> Value:
    """Keras' "valid" transposed convolution gives in*s + max(k - s, 0) rows; ONNX's output is
    (in - 1)*s + k + output_padding - pads, its extra rows bias only, like Keras' beyond (in - 1)*s + k:
    crop the difference."""
    x = ctx.value(node)
    w, b = ctx.const(node, 1), ctx.const(node, 2)
    kernel = tuple(int(k) for k in w.shape[2:])
    strides = tuple(int(s) for s in attrs.get("strides", [1, 1]))
    pads = [int(p) for p in attrs.get("pads", [0, 0, 0, 0])]
    extra = [int(p) for p in attrs.get("output_padding", [0, 0])]
    if int(w.shape[0]) != int(x.tensor.shape[-1]) or (b is not None and b.size != w.shape[1]):
        raise ToolchainError(f"ONNX node {node.name!r}: ConvTranspose weights {list(w.shape)} for "
                             f"{int(x.tensor.shape[-1])} input channels")
    name = ctx.layer_name(node)
    layer = ctx.keras.layers.Conv2DTranspose(int(w.shape[1]), kernel, strides=strides, padding="valid",
                                             use_bias=b is not None, name=ctx.sub_name(name, "deconv"))
    y = ctx.apply(layer, x.tensor, [w.transpose(2, 3, 1, 0)] + ([b] if b is not None else []))
    crops = []
    for i, size in enumerate(spatial(x)):
        keras_size = size * strides[i] + max(kernel[i] - strides[i], 0)
        onnx_size = (size - 1) * strides[i] + kernel[i] + extra[i] - pads[i] - pads[2 + i]
        if onnx_size < 1:
            raise ToolchainError(f"ONNX node {node.name!r}: ConvTranspose output of size {onnx_size}")
        crops.append((pads[i], keras_size - onnx_size - pads[i]))
    return Value(ctx.keras.layers.Cropping2D(tuple(crops), name=name)(y))


# ---- ReduceMean, Transpose ---------------------------------------------------------------------------

def _mean_axes(node, attrs, ctx) -> list[int] | None:
    axes = ctx.const(node, 1) if ctx.opset >= 18 else attrs.get("axes")
    return None if axes is None else sorted(int(a) % 4 for a in np.asarray(axes).reshape(-1))


def _check_reduce_mean(node, attrs, ctx) -> list[str]:
    if _mean_axes(node, attrs, ctx) != [2, 3]:
        return ["only the mean over H and W (axes 2, 3 or -2, -1, constant) of an NCHW map"]
    return [] if not attrs.get("noop_with_empty_axes", 0) else ["noop_with_empty_axes is not supported"]


@onnx_op("ReduceMean", _check_reduce_mean)
def _reduce_mean(node, attrs, ctx: Context) -> Value:
    x = ctx.value(node)
    if x.rank != 4:
        raise ToolchainError(f"ONNX node {node.name!r}: ReduceMean of a rank-{x.rank} tensor")
    name = ctx.layer_name(node)
    if attrs.get("keepdims", 1):
        return Value(ctx.keras.layers.AveragePooling2D(spatial(x), name=name)(x.tensor))  # [N, 1, 1, C]
    return Value(ctx.keras.layers.GlobalAveragePooling2D(name=name)(x.tensor))


def _check_transpose(node, attrs, ctx) -> list[str]:
    perm = attrs.get("perm")
    if perm is None or sorted(perm) != [0, 1, 2, 3] or perm[0] != 0:
        return [f"perm {perm}: only a permutation of the C, H, W axes of a 4-D map"]
    return []


@onnx_op("Transpose", _check_transpose)
def _transpose(node, attrs, ctx: Context) -> Value:
    """ONNX permutes NCHW axes; the Keras tensors are the same maps in NHWC, so the permutation applied to
    them is: NHWC axis -> NCHW axis of the output -> NCHW axis of the input -> its NHWC axis."""
    x = ctx.value(node)
    if x.rank != 4:
        raise ToolchainError(f"ONNX node {node.name!r}: Transpose of a rank-{x.rank} tensor")
    keras_axis_of, onnx_axis_of = (0, 3, 1, 2), (0, 2, 3, 1)  # NCHW axis -> NHWC axis and back
    perm = list(attrs["perm"])
    keras_perm = [keras_axis_of[perm[onnx_axis_of[i]]] for i in range(4)]
    return Value(ctx.keras.layers.Permute(tuple(keras_perm[1:]), name=ctx.layer_name(node))(x.tensor))
