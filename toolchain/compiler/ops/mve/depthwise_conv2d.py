"""DEPTHWISE_CONV_2D on the mve path (Cortex-M55 Helium): firmware/kernels/mve/tm_depthwise_conv2d_s8.c.

Pixel-lane variants, vectorised over 4 neighbouring output pixels of one channel (VMLA vector-by-scalar)
from a channel-planar row buffer in the scratch memory: `_3x3_s1` / `_3x3_s2` (3x3 window, column stride 1 / 2,
row stride 1 or 2, no dilation: the MobileNet/DS-CNN layers, taps unrolled; one entry point per column stride,
so a model links only the unrolled rows it runs) and the generic one (any window up to TM_DW_MVE_MAX_KH rows, any
stride and dilation). All take any depth multiplier. The channel-lane variant `_cl` (4 channels of one output
pixel per step, each window gathered and reduced with VMLADAV.S8 from padded per-channel planes) takes the
narrow layers (use_channel_lanes) where the pixel lanes are mostly empty, in bands of output rows whose ring of
padded input rows fits the scratch (band_rows); `_cl_large` is the same for windows of more than 16 taps (5x5,
7x7: chunks of 16 taps accumulated with VMLADAVA), at any width. The compiler re-lays-out the filter
per channel and folds the input offset into the bias (see the C header for the layouts).
Wide layers (GROUP_MIN_CHANNELS channels or more) whose whole padded planes do not fit run the channel lanes in
channel groups instead of bands: per group of 4 (or more, as the scratch budget allows) channels, its whole
padded planes, then its outputs (band_rows < 0: minus the group's channels).

In place (`in_place`): every variant reads its input only into the scratch (row slots, a ring of rows, planes),
a step's rows before the step's outputs, in increasing order: the output may start as far before the input as
no step's outputs reach a row a later step still copies (`overlap.steps_before`; 3x3 stride 1 SAME: the output
may lie exactly over the input). Channel groups: a group writes only its own channels' bytes, all of them
copied already, so the output may lie exactly over the input (same offset), with any stride.
"""
from __future__ import annotations

import numpy as np

from toolchain.compiler.ops.base import activation, bias_id, fold_input_offset, per_channel_multipliers, window_geometry
from toolchain.compiler.ops.depthwise_conv2d import depthwise_params
from toolchain.compiler.ops.mve.overlap import steps_before
from toolchain.compiler.ops.variants import InPlace, Variant, register_variant, scratch_budget

MAX_KH = 16  # TM_DW_MVE_MAX_KH
MAX_CHUNKS = 4  # TM_DW_CL_MAX_CHUNKS
KERNEL = "tm_depthwise_conv2d_s8_mve"


def _geometry(op, g):
    inp, w, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    geo = window_geometry(op, g, w.shape[1], w.shape[2])
    return inp, w, out, geo


def row_pixels(w_out: int, kw: int, stride_w: int, dilation_w: int) -> int:
    """tm_dw_row_pixels: one phase of one channel in a row-buffer slot."""
    return ((w_out + 3) & ~3) + ((kw - 1) * dilation_w) // stride_w + 1


def buffer_size(kh: int, kw: int, c_in: int, w_out: int, stride_w: int, dilation_w: int) -> int:
    """tm_depthwise_conv2d_s8_mve_get_buffer_size: kh slots of c_in * stride_w * row_pixels bytes."""
    return kh * c_in * stride_w * row_pixels(w_out, kw, stride_w, dilation_w)


def cl_extent(out: int, k: int, stride: int, dilation: int) -> int:
    """tm_dw_cl_extent: the padded input rows (columns) the channel-lane variant keeps per channel."""
    return (out - 1) * stride + (k - 1) * dilation + 1


def cl_buffer_size(op, g, band: int) -> int:
    """tm_depthwise_conv2d_s8_mve_cl_get_buffer_size: the ring of c_in planar rows of wp bytes a band of `band`
    output rows reads (band = h_out: the whole padded input); band < 0: the whole padded planes of -band
    channels (a channel group)."""
    inp, w, out, geo = _geometry(op, g)
    _, h_out, w_out, _ = out.nhwc()
    (sh, sw), (dh, dw) = geo["stride"], geo["dilation"]
    channels = min(-band, inp.shape[3]) if band < 0 else inp.shape[3]
    band = h_out if band < 0 else min(max(band, 1), h_out)
    return channels * cl_extent(band, w.shape[1], sh, dh) * cl_extent(w_out, w.shape[2], sw, dw)


def chunks(kh: int, kw: int) -> int:
    """tm_dw_cl_chunks: the channel-lane variants' 16-tap gathers per window."""
    return (kh * kw + 15) // 16


def chunk_offsets_fit(kh: int, kw: int, dh: int, dw: int, wp: int) -> bool:
    """Every chunk's taps lie within 255 bytes of the plane row of its first tap (the gathers' byte offsets)."""
    for t in range(chunks(kh, kw)):
        base = (16 * t // kw) * dh * wp
        taps = range(16 * t, min(16 * t + 16, kh * kw))
        if max((tap // kw) * dh * wp + (tap % kw) * dw - base for tap in taps) > 255:
            return False
    return True


def channel_lanes_fit(op, g) -> bool:
    """The shapes tm_depthwise_conv2d_s8_mve_cl / _cl_large take (see the header), every channel shifting right
    (a band of one row: 7 * hp * wp <= 65535 is checked per band in band_rows)."""
    inp, w, out, geo = _geometry(op, g)
    _, kh, kw, c_out = w.shape
    _, h_out, w_out, _ = out.nhwc()
    (sh, sw), (dh, dw) = geo["stride"], geo["dilation"]
    wp = cl_extent(w_out, kw, sw, dw)
    if not (c_out == inp.shape[3] and c_out % 4 == 0 and chunks(kh, kw) <= MAX_CHUNKS
            and chunk_offsets_fit(kh, kw, dh, dw, wp) and 7 * cl_extent(1, kh, sh, dh) * wp <= 65535):
        return False
    _, shift = per_channel_multipliers(inp, w, out, c_out)
    return bool(np.all(np.asarray(shift) < 0))


GROUP = 4  # channels per group of the channel-lane variant's grouped form (one VMLADAV lane group)
GROUP_MIN_CHANNELS = 32  # narrower layers keep their ring of rows (already small)
CL_MAX_W_OUT = 32  # wider rows: the pixel-lane variants are about as fast, with a 3-row buffer, not the planes


def pixel_buffer_size(op, g) -> int:
    inp, w, out, geo = _geometry(op, g)
    return buffer_size(w.shape[1], w.shape[2], inp.shape[3], out.nhwc()[2], geo["stride"][1], geo["dilation"][1])


def band_rows(op, g) -> int:
    """The channel-lane variant's output rows per band, 0 where the pixel-lane variants run instead, minus the
    channels per group for the grouped form (whole planes of a few channels at a time).
    Channel lanes cost about the same per output pixel whatever the shape; the pixel-lane variants lose on
    narrow rows (a vector of 4 pixels per channel is partly empty, per-channel overhead over few pixels).
    Measured on mps3-an547 (instr/MAC, pixel -> channel lanes): KWS 25x5x64 3.50 -> 1.00, VWW 6x6x128
    2.97 -> 1.09, 24x24x32 1.56 -> 0.95; at 48x48x8 both ~1.4. The band is the tallest whose ring fits both the
    pixel-lane row buffer's bytes (so the first, leanest plan pass never grows the arena) or, if larger, the
    arena bytes free at this layer (the planner's `scratch_budget`): the faster kernel never costs RAM.
    Windows of more than 16 taps (5x5, 7x7) take the channel lanes at any width: the pixel-lane variant for them
    is the generic one (taps not unrolled), measured 4.47 instr/MAC on MobileNetV3's 5x5 layers."""
    _, w, out, geo = _geometry(op, g)
    _, h_out, w_out, _ = out.nhwc()
    if not channel_lanes_fit(op, g) or (w_out >= CL_MAX_W_OUT and chunks(w.shape[1], w.shape[2]) == 1):
        return 0
    cap = max(scratch_budget(op), pixel_buffer_size(op, g))
    c_in = g.tensors[op.inputs[0]].shape[3]
    whole = cl_buffer_size(op, g, h_out)
    if whole <= cap and 7 * (whole // c_in) <= 65535:
        return h_out
    group = GROUP if c_in >= GROUP_MIN_CHANNELS else 0
    if group and cl_buffer_size(op, g, -group) < cl_buffer_size(op, g, 1) and 7 * (whole // c_in) <= 65535:
        # channel groups: the leanest (4 channels) in the first plan pass, as many as the budget holds after
        plane = whole // c_in
        return -max(group, min(scratch_budget(op) // plane // group * group, c_in))
    for band in range(h_out - 1, 0, -1):
        size = cl_buffer_size(op, g, band)
        if size <= cap and 7 * (size // c_in) <= 65535:  # the fill's 16-bit scatter offsets: 7 ring planes
            return band
    return 0


def use_channel_lanes(op, g) -> bool:
    return band_rows(op, g) != 0


def is_3x3(op, g) -> bool:
    _, w, _, geo = _geometry(op, g)
    return (w.shape[1], w.shape[2]) == (3, 3) and geo["dilation"] == (1, 1) and all(
        s in (1, 2) for s in geo["stride"])


@register_variant("DEPTHWISE_CONV_2D", "mve")
class DepthwiseConv2DMve(Variant):
    def applies(self, op, g):
        inp, w, out, geo = _geometry(op, g)
        return len(inp.shape) == 4 and w.shape[1] <= MAX_KH and out.shape[3] % inp.shape[3] == 0

    def kernel_for(self, op, g):
        if use_channel_lanes(op, g):
            w = g.tensors[op.inputs[1]]
            return f"{KERNEL}_cl" if chunks(w.shape[1], w.shape[2]) == 1 else f"{KERNEL}_cl_large"
        if is_3x3(op, g):  # one entry point per column stride: a model links only the rows it runs
            return f"{KERNEL}_3x3_s{_geometry(op, g)[3]['stride'][1]}"
        return KERNEL

    def scratch_bytes(self, op, g):
        band = band_rows(op, g)
        return cl_buffer_size(op, g, band) if band else pixel_buffer_size(op, g)

    def in_place(self, op, g) -> InPlace | None:
        inp, w, out, geo = _geometry(op, g)
        if len(inp.shape) != 4 or len(out.shape) != 4:
            return None
        n, h_in, w_in, c_in = inp.nhwc()
        _, h_out, w_out, c_out = out.nhwc()
        band = band_rows(op, g)
        if band < 0:  # channel groups: a group overwrites only its own channels, which it has copied
            return InPlace(same=True) if c_out == c_in and h_out * w_out <= h_in * w_in else None
        kh = w.shape[1]
        (sh, _), (dh, _), pad = geo["stride"], geo["dilation"], geo["pad"][0]
        irow, orow = w_in * c_in, w_out * c_out
        steps = _ring_steps(n, h_in, h_out, kh, sh, dh, pad, band) if band else _slot_steps(
            n, h_in, h_out, kh, sh, dh, pad)
        return steps_before([end * orow for end, _ in steps],
                            [NEVER if first == NEVER else first * irow for _, first in steps], inp.nbytes)

    def emit(self, op, g, em):
        inp, w, out, geo = _geometry(op, g)
        _, kh, kw, c_out = w.shape
        params = em.params(depthwise_params(op, g))
        weights = np.asarray(w.data, dtype=np.int64).reshape(kh * kw, c_out)
        bias = bias_id(op, 2)
        folded = fold_input_offset(weights.T, g.tensors[bias].data if bias is not None else None, -inp.zero_point)
        mult, shift = per_channel_multipliers(inp, w, out, c_out)
        channel_data = np.stack([folded, np.asarray(mult, np.int64), np.maximum(shift, 0),
                                 np.minimum(shift, 0)], axis=1)
        band = band_rows(op, g)
        if band:
            # [group][field][lane]: folded bias, multiplier, -right shift (no left shifts: channel_lanes_fit)
            groups = channel_data[:, [0, 1, 3]].reshape(c_out // 4, 4, 3).transpose(0, 2, 1)
            act_min, act_max = activation(op, out)
            clamp = np.broadcast_to(np.array([[act_min] * 4, [act_max] * 4], np.int64), (c_out // 4, 2, 4))
            cd = em.weights("int32_t", np.concatenate([groups, clamp], axis=1).reshape(-1), "dwmve_ch",
                            "per 4 channels: folded bias, multiplier, -right shift, activation min, max")
            n = chunks(kh, kw)
            taps = np.zeros((c_out, n * 16), np.int64)
            taps[:, :kh * kw] = weights.T
            taps = taps.reshape(c_out // 4, 4, n, 16).transpose(0, 2, 1, 3)
            filt = em.weights("int8_t", taps.reshape(c_out, n * 16), "dwmve_w",
                              "depthwise filter as [c / 4][16-tap chunk][c % 4][16] (taps, then zeros)")
        else:
            cd = em.weights("int32_t", channel_data, "dwmve_ch",
                            "per channel: folded bias, multiplier, left shift, -right shift")
            filt = em.weights("int8_t", weights.T, "dwmve_w", "depthwise filter as [c_out][kh][kw]")
        in_dims, w_dims, out_dims = (em.dims_value(d) for d in (inp.nhwc(), w.nhwc(), out.nhwc()))
        band_arg = f"{band}, " if band else ""  # the channel-lane kernel's rows per band
        return (f"{self.kernel_for(op, g)}({em.context()}, &{params}, {cd}, {band_arg}{in_dims}, "
                f"{em.ptr(op.inputs[0])}, {w_dims}, {filt}, {out_dims}, {em.ptr(op.outputs[0])})")


NEVER = 1 << 62  # a step that copies no input row (also in bytes)


def _slot_steps(n, h_in, h_out, kh, sh, dh, pad) -> list[tuple[int, int]]:
    """The pixel-lane variants (tm_dw_run's row slots, replayed): per output row, (output rows written after it,
    the lowest input row it copies), rows counted across batches."""
    held, steps = [-2] * kh, []
    for b in range(n):
        for oy in range(h_out):
            want = [-1 if not 0 <= oy * sh - pad + ky * dh < h_in else b * h_in + oy * sh - pad + ky * dh
                    for ky in range(kh)]
            copied = []
            for row in want:
                if row in held:
                    continue
                slot = next(k for k in range(kh) if held[k] not in want)
                held[slot] = row
                if row >= 0:
                    copied.append(row)
            steps.append((b * h_out + oy + 1, min(copied, default=NEVER)))
    return steps


def _ring_steps(n, h_in, h_out, kh, sh, dh, pad, band) -> list[tuple[int, int]]:
    """The channel-lane variant in bands (every band copies its ring's rows from the input, the halo again)."""
    steps = []
    for b in range(n):
        for oy in range(0, h_out, band):
            rows = min(band, h_out - oy)
            iy0 = oy * sh - pad
            first, last = max(iy0, 0), min(iy0 + cl_extent(rows, kh, sh, dh), h_in)
            steps.append((b * h_out + oy + rows, b * h_in + first if first < last else NEVER))
    return steps
