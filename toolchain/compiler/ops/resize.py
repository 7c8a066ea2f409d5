"""RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR with a constant size, from per-row and per-column tables.

Which input row an output row reads (and, bilinear, its neighbour and their weights) depends on the row alone,
so the tables are computed here with LiteRT's reference arithmetic and kept in flash (h_out + w_out entries per
table); the kernel `tm_resize_s8` only gathers and blends:
- nearest: GetNearestNeighbor (reference/resize_nearest_neighbor.h) in float32: scale = in / out (or
  (in - 1) / (out - 1) with align_corners), index = floor((i + offset) * scale) (round() with align_corners),
  offset 0.5 with half_pixel_centers, clamped to [0, in - 1];
- bilinear: ResizeBilinearInteger (reference/resize_bilinear.h), LiteRT's int8 reference, in steps of 1/1024:
  scale_10 = round(1024 * in / out), the sampling point v * scale_10 (+ scale_10 / 2 - 512 with
  half_pixel_centers), the rows below and above it and the upper one's weight.
"""
from __future__ import annotations

import math

import numpy as np

from toolchain.compiler import quant as q
from toolchain.compiler.ops.base import OpDef, check_output_shape, register, require_int8, same_quant, unary_call
from toolchain.compiler.ops.params import NULL, ResizeAxis, ResizeParams, Symbol

INT16_MAX = 2**15 - 1  # the tables are int16


def output_size(op, g) -> tuple[int, int] | None:
    """The constant (height, width) the op resizes to; None unless a constant int32 pair of positive values."""
    size = g.tensors[op.inputs[1]]
    if not size.is_const or size.dtype != "int32" or size.size != 2:
        return None
    h, w = (int(v) for v in size.data.reshape(-1))
    return (h, w) if h > 0 and w > 0 else None


def _c_div(a: int, b: int) -> int:
    """C's integer division (truncates toward zero)."""
    return -(-a // b) if a < 0 else a // b


def nearest_axis(in_size: int, out_size: int, align_corners: bool, half_pixel: bool) -> list[int]:
    f32 = np.float32
    scale = (f32(in_size - 1) / f32(out_size - 1) if align_corners and out_size > 1
             else f32(in_size) / f32(out_size))
    offset = f32(0.5) if half_pixel else f32(0.0)
    table = []
    for i in range(out_size):
        point = float((f32(i) + offset) * scale)
        index = min(q.tflite_round(point) if align_corners else math.floor(point), in_size - 1)
        table.append(max(index, 0) if half_pixel else index)
    return table


def bilinear_axis(in_size: int, out_size: int, align_corners: bool,
                  half_pixel: bool) -> tuple[list[int], list[int], list[int]]:
    """(lower, upper, upper's weight in 1/1024) per output index."""
    if align_corners and out_size > 1:
        scale = (1024 * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    else:
        scale = (1024 * in_size + out_size // 2) // out_size
    lower, upper, weight = [], [], []
    for v in range(out_size):
        point = v * scale + scale // 2 - 512 if half_pixel else v * scale
        lower.append(max(_c_div(point, 1024), 0))
        upper.append(min(_c_div(point + 1023, 1024), in_size - 1))
        weight.append(point - 1024 * lower[-1])
    return lower, upper, weight


def tables(op, g) -> list[tuple[list[int], ...]]:
    """Per axis (rows, columns), the kernel's tables: (lower,) for nearest, (lower, upper, weight) for bilinear."""
    _, h, w, _ = g.tensors[op.inputs[0]].shape
    align, half = bool(op.options.get("alignCorners")), bool(op.options.get("halfPixelCenters"))
    axis = bilinear_axis if op.kind == "RESIZE_BILINEAR" else nearest_axis
    found = [axis(n, m, align, half) for n, m in zip((h, w), output_size(op, g))]
    return [t if isinstance(t, tuple) else (t,) for t in found]


def _tables_fit(op, g) -> bool:
    """Every index inside the input and every weight within [-1024, 1024] (the kernel checks the same); a size
    past int16 or absurdly large against the input would break that."""
    _, h, w, _ = g.tensors[op.inputs[0]].shape
    for extent, axis in zip((h, w), tables(op, g)):
        if any(not 0 <= i < extent for t in axis[:2] for i in t):
            return False
        if len(axis) == 3 and any(abs(x) > 1024 for x in axis[2]):
            return False
    return True


@register("RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR")
class Resize(OpDef):
    constraints = ("int8 4-D NHWC, a constant size, align_corners or half_pixel_centers (bilinear: not both); input "
                   "and output share scale and zero point")
    kernel = "tm_resize_s8"
    num_inputs = (2, 2)

    def check(self, op, g):
        problems = require_int8(g, op)
        inp = g.tensors[op.inputs[0]]
        if len(inp.shape) != 4:
            return problems + [f"only 4-D NHWC input is supported (got shape {list(inp.shape)})"]
        size = output_size(op, g)
        if size is None:
            return problems + ["the size must be a constant int32 tensor of two positive values (height, width)"]
        if op.kind == "RESIZE_BILINEAR" and op.options.get("alignCorners") and op.options.get("halfPixelCenters"):
            return problems + ["align_corners and half_pixel_centers together are not supported (LiteRT refuses "
                               "them)"]
        if max(*inp.shape[1:3], *size) > INT16_MAX:
            return problems + [f"input and output height and width must be at most {INT16_MAX}"]
        problems += check_output_shape(op, g, (inp.shape[0], *size, inp.shape[3]))
        if not problems and not same_quant(inp, g.tensors[op.outputs[0]]):
            problems.append("input and output quantization differ")
        if not problems and not _tables_fit(op, g):
            problems.append(f"resizing {list(inp.shape[1:3])} to {list(size)} samples outside the input")
        return problems

    def macs(self, op, g):
        return 4 * g.tensors[op.outputs[0]].size if op.kind == "RESIZE_BILINEAR" else 0

    def kernel_dims(self, op, g):
        return g.tensors[op.inputs[0]].nhwc(), g.tensors[op.outputs[0]].nhwc()

    def scratch_bytes(self, op, g):
        return 0  # tm_resize_s8_get_buffer_size (ref)

    def emit(self, op, g, em):
        def symbol(values, name):
            return Symbol(em.weights("int16_t", values, name))

        axes = []
        for axis, name in zip(tables(op, g), ("resize_rows", "resize_cols")):
            if len(axis) == 1:
                axes.append(ResizeAxis(lower=symbol(axis[0], name), upper=NULL, weight=NULL))
            else:
                axes.append(ResizeAxis(*(symbol(t, f"{name}_{part}")
                                         for t, part in zip(axis, ("lower", "upper", "weight")))))
        params = em.params(ResizeParams(rows=axes[0], cols=axes[1], bilinear=int(op.kind == "RESIZE_BILINEAR")))
        return unary_call(self.kernel, em, params, op, self.kernel_dims(op, g))
