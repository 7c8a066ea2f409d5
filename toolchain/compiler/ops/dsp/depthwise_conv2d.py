"""DEPTHWISE_CONV_2D on the dsp path: 3x3 and KxK (kh, kw in 2..7: 5x5, 7x7, ...), stride 1 or 2, ch_mult 1
(firmware/kernels/dsp/tm_depthwise_conv2d_s8.c).

The compiler packs, per output channel, the doubled weights as int16 pairs of neighbouring taps (a window of kr
lines by kc taps along them, kc made odd with a zero tap), the doubled bias and the requantization with the
output offset folded in (layout in the C header). Other shapes (larger filters, dilation, ch_mult > 1) and the
rare layers where the fast requantization would not be exact (shift >= 0, huge biases or shifts) use the
portable kernel. The scratch layout (planes of channel groups or
the ring of rows) is chosen within the planner's `scratch_budget` for the layer, passed to the kernel.

In place (`in_place`): the kernel reads its input only into scratch, and writes an output value only after
the input values it needs are there. Planes: a channel group's input is widened whole before any of that
group's outputs are written, and those only land on bytes of the group's own channels (same channel count),
so the output may lie exactly over the input; with a single group (and one image) all of the input is read
before the first write: any overlap. Ring: output row o is written once the input rows up to its window's
last are in the ring, and the rows read after it start at row o * stride - pad + kr: a `before` distance
(lines along W), or exactly in place where the shape does not change (lines along H).
"""
from __future__ import annotations

import numpy as np

from toolchain.compiler.ir import Graph, Op
from toolchain.compiler.ops.base import bias_id, per_channel_multipliers, window_geometry
from toolchain.compiler.ops.depthwise_conv2d import depthwise_params
from toolchain.compiler.ops.variants import InPlace, Variant, register_variant, scratch_budget

KERNEL = "tm_depthwise_conv2d_s8_dsp_3x3s"
KXK_KERNEL = "tm_depthwise_conv2d_s8_dsp_kxks"
MAX_K = 7  # TM_DWK_MAX
ACC_LIMIT = 1 << 29  # |acc| below it: 2*acc and SMMLAR's sum stay inside int32
PLANE_BUDGET = 4096  # DW_PLANE_BUDGET


def transposed(h_out: int, w_out: int) -> bool:
    """The kernel's lines run along H (and the packed weights are transposed): the C dw_transposed."""
    return h_out > w_out


def window_lines(kh: int, kw: int, h_out: int, w_out: int) -> tuple[int, int]:
    """(kr, kc): the window in the kernel's line terms, kr lines by kc taps along them (made odd): the C
    dwk_lines / dwk_taps."""
    kr, kc = (kw, kh) if transposed(h_out, w_out) else (kh, kw)
    return kr, kc | 1


def scratch_layout(h_out: int, w_out: int, channels: int, stride: int, budget: int = PLANE_BUDGET,
                   kr: int = 3, kc: int = 3) -> tuple[int, int]:
    """(channels per plane group or 0 for the ring of kr rows, scratch bytes) within `budget` bytes, planes
    within min(budget, PLANE_BUDGET): the C dw_plan. Every channel's planes, else groups of a multiple of 4
    channels, else the ring, else groups of 1-3 channels, if they fit; else the leaner of one channel's planes
    and the ring."""
    along, across = (h_out, w_out) if transposed(h_out, w_out) else (w_out, h_out)
    line = stride * ((along + 1) & ~1) + kc - 1
    plane = ((across - 1) * stride + kr) * line * 2
    ring = kr * channels * line * 2
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
              anywhere: InPlace, kr: int = 3) -> InPlace:
    """The ring's overlap, lines along W: output row o (bytes up to (o + 1) * row_out) is written before input
    row o * stride - pad + kr (and the rows after it) is first read; across images, image b's output before
    image b + 1's input."""
    row_in, row_out = w_in * channels, w_out * channels
    gaps = [(o + 1) * row_out - (o * stride - pad + kr) * row_in
            for o in range(h_out - 1) if o * stride - pad + kr < h_in]
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
        """Per channel, per line r: A_0, B_1, .., A_M-1, B_M (the C header), then the requantization words."""
        _, kh, kw, _ = self.w.shape
        w2 = 2 * self.w.data.astype(np.int64).reshape(kh, kw, self.channels)
        if transposed(self.out.shape[1], self.out.shape[2]):
            w2 = w2.transpose(1, 0, 2)  # "filter rows" run across the kernel's lines: the filter's columns
        kr, kc = w2.shape[0], w2.shape[1] | 1
        taps = np.zeros((kr, kc, self.channels), np.int64)
        taps[:, :w2.shape[1]] = w2  # an even width: a zero tap after the last
        lines = kr * (kc - 1)
        words = np.zeros((self.channels, lines + 4), np.int64)
        for r in range(kr):
            for j in range((kc - 1) // 2):
                words[:, r * (kc - 1) + 2 * j] = _pack16(taps[r, 2 * j], taps[r, 2 * j + 1])
                words[:, r * (kc - 1) + 2 * j + 1] = _pack16(taps[r, 2 * j + 1], taps[r, 2 * j + 2])
        e = -np.asarray(self.shifts, np.int64)
        words[:, lines] = 2 * self.bias
        words[:, lines + 1] = self.multipliers
        words[:, lines + 2] = (1 << (e - 1)) + self.out.zero_point * (1 << e)
        words[:, lines + 3] = e
        return words


def _is_3x3(op: Op, g: Graph) -> bool:
    return tuple(g.tensors[op.inputs[1]].shape[1:3]) == (3, 3)


def _lines(op: Op, g: Graph) -> tuple[int, int]:
    """(kr, kc) of the layer (3, 3 for the 3x3 variants)."""
    _, kh, kw, _ = g.tensors[op.inputs[1]].shape
    _, h_out, w_out, _ = g.tensors[op.outputs[0]].nhwc()
    return window_lines(kh, kw, h_out, w_out)


@register_variant("DEPTHWISE_CONV_2D", "dsp")
class DepthwiseConv2DDsp(Variant):
    def applies(self, op: Op, g: Graph) -> bool:
        inp, w, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
        _, kh, kw, _ = w.shape
        if not (2 <= kh <= MAX_K and 2 <= kw <= MAX_K) or out.shape[3] != inp.shape[3]:
            return False
        geo = window_geometry(op, g, kh, kw)
        if geo["dilation"] != (1, 1) or geo["stride"] not in ((1, 1), (2, 2)):
            return False
        return _Layer(op, g).exact()

    def _stride(self, op: Op, g: Graph) -> int:
        w = g.tensors[op.inputs[1]]
        return window_geometry(op, g, w.shape[1], w.shape[2])["stride"][0]

    def kernel_for(self, op: Op, g: Graph) -> str:
        return f"{KERNEL if _is_3x3(op, g) else KXK_KERNEL}{self._stride(op, g)}"

    def scratch_bytes(self, op: Op, g: Graph) -> int:
        """tm_depthwise_conv2d_s8_dsp_{3x3,kxk}s<stride>_get_buffer_size: int16 lines of the input."""
        _, h_out, w_out, channels = g.tensors[op.outputs[0]].nhwc()
        return scratch_layout(h_out, w_out, channels, self._stride(op, g), scratch_budget(op), *_lines(op, g))[1]

    def in_place(self, op: Op, g: Graph) -> InPlace | None:
        inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        n, h_in, w_in, channels = inp.nhwc()
        _, h_out, w_out, _ = out.nhwc()
        stride = self._stride(op, g)
        if h_out * w_out > h_in * w_in:  # an output image larger than its input: not in this kernel's terms
            return None
        anywhere = InPlace(before=-inp.nbytes, after=-out.nbytes, same=True)
        kr, kc = _lines(op, g)
        group, _ = scratch_layout(h_out, w_out, channels, stride, scratch_budget(op), kr, kc)
        if group > 0:
            return anywhere if group >= channels and n == 1 else InPlace(same=True)
        if transposed(h_out, w_out):
            return InPlace(same=True) if (h_out, w_out) == (h_in, w_in) else None
        w = g.tensors[op.inputs[1]]
        return ring_rule(n, h_in, w_in, h_out, w_out, channels, stride,
                         window_geometry(op, g, w.shape[1], w.shape[2])["pad"][0], anywhere, kr)

    def emit(self, op: Op, g: Graph, em) -> str:
        layer = _Layer(op, g)
        params = em.params(depthwise_params(op, g))  # ch_mult 1: applies() takes no other
        kh, kw = layer.w.shape[1:3]
        packed = em.weights("int32_t", layer.packed(), "dwpack",
                            f"{layer.w.name}: {kh}x{kw} weights x2 as int16 tap pairs, 2*bias, requantization")
        filter_dims = "" if _is_3x3(op, g) else f"{em.dims_value(layer.w.nhwc())}, "
        return (f"{self.kernel_for(op, g)}({em.context()}, &{params}, {packed}, {scratch_budget(op)}, "
                f"{em.dims_value(layer.inp.nhwc())}, {em.ptr(op.inputs[0])}, {filter_dims}"
                f"{em.dims_value(layer.out.nhwc())}, {em.ptr(op.outputs[0])})")
