"""CONV_2D on the dsp path: an SMLAD GEMM over int16 columns (firmware/kernels/dsp/tm_conv2d_s8.c).

At compile time the filter is packed in channel pairs and groups of 4 depth values (the lane order SXTB16
needs), and the input offset is folded into the bias: bias'[c] = bias[c] + input_offset * sum(w[c]), so the
kernel multiplies raw int8 inputs (padded positions hold the input zero point, which cancels its share).

In place (`in_place`): both kernels take output pixels two at a time, widen (1x1) or gather and widen (im2col)
both pixels' inputs into scratch, and only then write the two pixels' outputs, pixel after pixel: the output
may start as far before the input as the furthest a block's written end lies past the first input byte any
later pixel reads (`gemm_before`). Pointwise with c_out <= c_in, stride 1: the output may start at the input.
"""
from __future__ import annotations

import numpy as np

from toolchain.compiler.ops.base import bias_id, fold_input_offset, per_channel_multipliers, window_geometry, wrap_int32
from toolchain.compiler.ops.conv2d import conv2d_params
from toolchain.compiler.ops.params import Quant, Symbol
from toolchain.compiler.ops.variants import InPlace, Variant, register_variant

# The fast requantization's largest right shift (TM_CONV_FAST_MAX_E in tm_conv2d_s8.h).
FAST_MAX_E = 22

# Scratch above this is refused (the portable kernel needs none): a filter window deeper than ~6,500 values.
MAX_SCRATCH = 32 * 1024


def _round_up(n: int, m: int) -> int:
    return (n + m - 1) // m * m


def padded_depth(kh: int, kw: int, cin: int) -> int:
    return _round_up(kh * kw * cin, 4)


def pack_filter(w: np.ndarray) -> np.ndarray:
    """[c_out, kh, kw, c_in] int8 -> the layout of tm_conv2d_s8.h: channel pairs, then groups of 4 depth values,
    4 bytes of channel 2j then 4 of 2j+1; depth and channel count zero-padded to multiples of 4 and 2."""
    cout = w.shape[0]
    flat = w.reshape(cout, -1).astype(np.int8)
    depth = _round_up(flat.shape[1], 4)
    padded = np.zeros((_round_up(cout, 2), depth), np.int8)
    padded[:cout, :flat.shape[1]] = flat
    return padded.reshape(-1, 2, depth // 4, 4).transpose(0, 2, 1, 3).reshape(-1)


def fold_bias(w: np.ndarray, bias: np.ndarray | None, input_offset: int) -> np.ndarray:
    """bias[c] + input_offset * sum(w[c]) wrapped to int32 (LiteRT's accumulator wraps), padded to even."""
    cout = w.shape[0]
    return np.concatenate([fold_input_offset(w, bias, input_offset), np.zeros(_round_up(cout, 2) - cout, np.int64)])


def channel_table(folded: np.ndarray, multipliers: list[int], shifts: list[int], output_offset: int) -> np.ndarray:
    """The 8-word-per-channel-pair table of tm_conv2d_s8.h: folded bias, multiplier and, when every channel's
    shift is in [-FAST_MAX_E, -2] (the kernel's own test), the rescale words 2^(e-2) + offset * 2^(e-1), e - 1."""
    cout = len(multipliers)
    pad = len(folded) - cout
    mult = np.array(list(multipliers) + [0] * pad, np.int64)
    e = -np.array(list(shifts) + [shifts[-1]] * pad, np.int64)
    if all(2 <= -s <= FAST_MAX_E for s in shifts):
        high, e1 = wrap_int32(2 ** (e - 2) + output_offset * 2 ** (e - 1)), e - 1
    else:
        high, e1 = np.zeros_like(e), np.zeros_like(e)
    words = np.stack([folded, mult, high, e1])  # [4, channels]
    return words.reshape(4, -1, 2).transpose(1, 0, 2).reshape(-1)


def first_reads(op, g) -> np.ndarray:
    """Per output pixel (batch, row, column order), the offset of the first input byte its window reads
    (tm_gather_window, or the 1x1 kernel's one pixel); the input's size where it reads none (all padding)."""
    inp, w, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    _, h_in, w_in, c_in = inp.nhwc()
    n, h_out, w_out, _ = out.nhwc()
    _, kh, kw, _ = w.shape
    geo = window_geometry(op, g, kh, kw)
    q = np.arange(n * h_out * w_out, dtype=np.int64)
    b, oy, ox = q // (h_out * w_out), q // w_out % h_out, q % w_out

    def first(start, size, k, stride, dilation, pad):
        """The first in-bounds tap of each window along one axis, and whether there is one."""
        s = start * stride - pad
        skip = np.where(s < 0, (-s + dilation - 1) // dilation, 0)
        pos = s + skip * dilation
        return pos, (skip < k) & (pos < size)

    iy, oky = first(oy, h_in, kh, geo["stride"][0], geo["dilation"][0], geo["pad"][0])
    ix, okx = first(ox, w_in, kw, geo["stride"][1], geo["dilation"][1], geo["pad"][1])
    return np.where(oky & okx, ((b * h_in + iy) * w_in + ix) * c_in, inp.nbytes)


def gemm_before(op, g) -> InPlace:
    """The overlap of the two-pixel blocks: block [p, p + 2)'s outputs end at (p + 2) * c_out bytes and must
    stay below the first byte every later pixel reads (first reads grow with the pixel index in both kernels,
    so the next pixel's is the least; the suffix minimum keeps that exact for windows of padding only)."""
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    c_out = out.nhwc()[3]
    reads = np.minimum.accumulate(first_reads(op, g)[::-1])[::-1]
    ends = np.arange(2, len(reads), 2)  # a block's end with pixels after it
    gaps = ends * c_out - reads[ends]
    if gaps.size == 0:  # one block: every read before any write
        return InPlace(before=-inp.nbytes, after=-out.nbytes, same=True)
    before = int(gaps.max())
    return InPlace(before=before, same=before <= 0)


@register_variant("CONV_2D", "dsp")
class DspConv2D(Variant):
    """tm_conv2d_s8_dsp_1x1 for pointwise layers without padding, tm_conv2d_s8_dsp_im2col otherwise."""

    def _is_1x1(self, op, g) -> bool:
        w = g.tensors[op.inputs[1]]
        return w.shape[1] == 1 and w.shape[2] == 1 and window_geometry(op, g, 1, 1)["pad"] == (0, 0)

    def applies(self, op, g):
        w = g.tensors[op.inputs[1]]
        return w.is_const and self.scratch_bytes(op, g) <= MAX_SCRATCH

    def kernel_for(self, op, g):
        return "tm_conv2d_s8_dsp_1x1" if self._is_1x1(op, g) else "tm_conv2d_s8_dsp_im2col"

    def scratch_bytes(self, op, g):
        _, kh, kw, cin = g.tensors[op.inputs[1]].shape
        return (4 if self._is_1x1(op, g) else 5) * padded_depth(kh, kw, cin)

    def in_place(self, op, g):
        return gemm_before(op, g)

    def emit(self, op, g, em):
        inp, w, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
        cout, kh, kw, cin = w.shape
        input_offset = -inp.zero_point
        params = em.params(conv2d_params(op, g))
        multipliers, shifts = per_channel_multipliers(inp, w, out, cout)
        extra = _round_up(cout, 2) - cout  # the dropped channel of an odd count: any valid (multiplier, shift)
        quant = em.params(Quant(multiplier=Symbol(em.array("int32_t", multipliers + [0] * extra, "mult")),
                                shift=Symbol(em.array("int32_t", shifts + shifts[-1:] * extra, "shift")),
                                per_channel=1))
        bias = bias_id(op, 2)
        filt = em.weights("int8_t", pack_filter(w.data), "dsp_filter",
                          f"{list(w.shape)} packed in channel pairs x 4 depth values")
        folded = fold_bias(w.data, g.tensors[bias].data if bias is not None else None, input_offset)
        table = em.weights("int32_t", channel_table(folded, multipliers, shifts, out.zero_point), "dsp_table",
                           f"per channel pair: bias + {input_offset} * sum(filter), multiplier, rescale words")
        in_dims, w_dims, out_dims = (em.dims_value(d) for d in (inp.nhwc(), w.nhwc(), out.nhwc()))
        return (f"{self.kernel_for(op, g)}({em.context()}, &{params}, &{quant}, {in_dims}, {em.ptr(op.inputs[0])}, "
                f"{w_dims}, {filt}, {table}, {out_dims}, {em.ptr(op.outputs[0])})")
