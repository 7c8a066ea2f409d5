"""DEPTHWISE_CONV_2D on the dsp path: 3x3, stride 1 or 2, ch_mult 1 (firmware/kernels/dsp/tm_depthwise_conv2d_s8.c).

The compiler packs, per output channel, the doubled 3x3 weights as int16 pairs of neighbouring taps, the
doubled bias and the requantization with the output offset folded in (layout in the C header). Other shapes
(filter sizes, dilation, ch_mult > 1) and the rare layers where the fast requantization would not be exact
(shift >= 0, huge biases or shifts) use the portable kernel. The scratch layout (planes of channel groups or
the ring of rows) is chosen within the planner's `scratch_budget` for the layer, passed to the kernel.

In place (`in_place`): the kernel reads its input only into scratch, and writes an output value only after
the input values it needs are there. Planes: a channel group's input is widened whole before any of that
group's outputs are written, and those only land on bytes of the group's own channels (same channel count),
so the output may lie exactly over the input; with a single group (and one image) all of the input is read
before the first write: any overlap. Ring: output row o is written once the input rows up to its window's
last are in the ring, and the rows read after it start at row o * stride - pad + 3: a `before` distance
(lines along W), or exactly in place where the shape does not change (lines along H).
"""
from __future__ import annotations

import numpy as np

from toolchain.compiler.ir import Graph, Op
from toolchain.compiler.ops.base import bias_id, per_channel_multipliers, window_geometry
from toolchain.compiler.ops.depthwise_conv2d import depthwise_params
from toolchain.compiler.ops.variants import InPlace, Variant, register_variant, scratch_budget

KERNEL = "tm_depthwise_conv2d_s8_dsp_3x3s"
WORDS_PER_CHANNEL = 10  # TM_DW3X3_WORDS
ACC_LIMIT = 1 << 29  # |acc| below it: 2*acc and SMMLAR's sum stay inside int32
PLANE_BUDGET = 4096  # DW_PLANE_BUDGET


def transposed(h_out: int, w_out: int) -> bool:
    """The kernel's lines run along H (and the packed weights are transposed): the C dw_transposed."""
    return h_out > w_out


def scratch_layout(h_out: int, w_out: int, channels: int, stride: int, budget: int = PLANE_BUDGET
                   ) -> tuple[int, int]:
    """(channels per plane group or 0 for the ring of three rows, scratch bytes) within `budget` bytes, planes
    within min(budget, PLANE_BUDGET): the C dw_plan. Every channel's planes, else groups of a multiple of 4
    channels, else the ring, else groups of 1-3 channels, if they fit; else the leaner of one channel's planes
    and the ring."""
    along, across = (h_out, w_out) if transposed(h_out, w_out) else (w_out, h_out)
    line = stride * ((along + 1) & ~1) + 2
    plane = ((across - 1) * stride + 3) * line * 2
    ring = 3 * channels * line * 2
    b = max(budget, 0)
    group = min(b, PLANE_BUDGET) // plane
    if group >= channels:
        group = channels
    elif group >= 4:
        group &= ~3
    elif ring <= b:
        group = 0
    elif group == 0:
        group = 1 if plane < ring else 0
    return group, (group * plane if group else ring)



def ring_rule(n: int, h_in: int, w_in: int, h_out: int, w_out: int, channels: int, stride: int, pad: int,
              anywhere: InPlace) -> InPlace:
    """The ring's overlap, lines along W: output row o (bytes up to (o + 1) * row_out) is written before input
    row o * stride - pad + 3 (and the rows after it) is first read; across images, image b's output before
    image b + 1's input."""
    row_in, row_out = w_in * channels, w_out * channels
    gaps = [(o + 1) * row_out - (o * stride - pad + 3) * row_in
            for o in range(h_out - 1) if o * stride - pad + 3 < h_in]
    if n > 1:
        gaps.append(h_out * row_out - h_in * row_in)
    if not gaps:
        return anywhere
    before = max(gaps)
    return InPlace(before=before, same=before <= 0)


def _pack16(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Two int16 lanes per int32 word (lane 0 in bits 0-15), as signed int32 values."""
    word = (lo.astype(np.int64) & 0xFFFF) | ((hi.astype(np.int64) & 0xFFFF) << 16)
    return np.where(word >= 1 << 31, word - (1 << 32), word)


class _Layer:
    """What the variant needs of one layer, computed once."""

    def __init__(self, op: Op, g: Graph):
        self.inp, self.w, self.out = (g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]])
        self.channels = self.out.shape[3]
        self.geo = window_geometry(op, g, self.w.shape[1], self.w.shape[2])
        b = bias_id(op, 2)
        self.bias = (g.tensors[b].data.astype(np.int64).reshape(-1) if b is not None
                     else np.zeros(self.channels, np.int64))
        self.multipliers, self.shifts = per_channel_multipliers(self.inp, self.w, self.out, self.channels)

    def exact(self) -> bool:
        """The fast requantization (tm_depthwise_conv2d_s8.h) is exact for every channel."""
        taps = np.abs(self.w.data.astype(np.int64).reshape(-1, self.channels)).sum(axis=0)
        if np.any(np.abs(self.bias) + 255 * taps >= ACC_LIMIT):
            return False
        offset = abs(self.out.zero_point) + 1
        return all(s <= -1 and offset << -s < 1 << 30 for s in self.shifts)

    def packed(self) -> np.ndarray:
        w2 = 2 * self.w.data.astype(np.int64).reshape(3, 3, self.channels)
        if transposed(self.out.shape[1], self.out.shape[2]):
            w2 = w2.transpose(1, 0, 2)  # "filter rows" run across the kernel's lines: the filter's columns
        words = np.zeros((self.channels, WORDS_PER_CHANNEL), np.int64)
        for ky in range(3):
            words[:, 2 * ky] = _pack16(w2[ky, 0], w2[ky, 1])
            words[:, 2 * ky + 1] = _pack16(w2[ky, 1], w2[ky, 2])
        e = -np.asarray(self.shifts, np.int64)
        words[:, 6] = 2 * self.bias
        words[:, 7] = self.multipliers
        words[:, 8] = (1 << (e - 1)) + self.out.zero_point * (1 << e)
        words[:, 9] = e
        return words


@register_variant("DEPTHWISE_CONV_2D", "dsp")
class DepthwiseConv2DDsp(Variant):
    def applies(self, op: Op, g: Graph) -> bool:
        inp, w, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
        if tuple(w.shape[1:3]) != (3, 3) or out.shape[3] != inp.shape[3]:
            return False
        geo = window_geometry(op, g, 3, 3)
        if geo["dilation"] != (1, 1) or geo["stride"] not in ((1, 1), (2, 2)):
            return False
        return _Layer(op, g).exact()

    def _stride(self, op: Op, g: Graph) -> int:
        return window_geometry(op, g, 3, 3)["stride"][0]

    def kernel_for(self, op: Op, g: Graph) -> str:
        return f"{KERNEL}{self._stride(op, g)}"

    def scratch_bytes(self, op: Op, g: Graph) -> int:
        """tm_depthwise_conv2d_s8_dsp_3x3s<stride>_get_buffer_size: int16 lines of the input."""
        _, h_out, w_out, channels = g.tensors[op.outputs[0]].nhwc()
        return scratch_layout(h_out, w_out, channels, self._stride(op, g), scratch_budget(op))[1]

    def in_place(self, op: Op, g: Graph) -> InPlace | None:
        inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        n, h_in, w_in, channels = inp.nhwc()
        _, h_out, w_out, _ = out.nhwc()
        stride = self._stride(op, g)
        if h_out * w_out > h_in * w_in:  # an output image larger than its input: not in this kernel's terms
            return None
        anywhere = InPlace(before=-inp.nbytes, after=-out.nbytes, same=True)
        group, _ = scratch_layout(h_out, w_out, channels, stride, scratch_budget(op))
        if group > 0:
            return anywhere if group >= channels and n == 1 else InPlace(same=True)
        if transposed(h_out, w_out):
            return InPlace(same=True) if (h_out, w_out) == (h_in, w_in) else None
        return ring_rule(n, h_in, w_in, h_out, w_out, channels, stride,
                         window_geometry(op, g, 3, 3)["pad"][0], anywhere)

    def emit(self, op: Op, g: Graph, em) -> str:
        layer = _Layer(op, g)
        params = em.params(depthwise_params(op, g))  # ch_mult 1: applies() takes no other
        packed = em.weights("int32_t", layer.packed(), "dwpack",
                            f"{layer.w.name}: 3x3 weights x2 as int16 tap pairs, 2*bias, requantization")
        return (f"{self.kernel_for(op, g)}({em.context()}, &{params}, {packed}, {scratch_budget(op)}, "
                f"{em.dims_value(layer.inp.nhwc())}, {em.ptr(op.inputs[0])}, "
                f"{em.dims_value(layer.out.nhwc())}, {em.ptr(op.outputs[0])})")
