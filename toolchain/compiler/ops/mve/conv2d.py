"""CONV_2D on the mve path (Cortex-M55, Helium): firmware/kernels/mve/tm_conv2d_s8.{c,h}.

Every layer is a GEMM of K = kh * kw * c_in bytes per output pixel, run with VMLADAVA.S8 two pixels by four
output channels at a time. At compile time the filter is re-laid-out so one pointer walks a block of four
channels in load order, the input offset is folded into the bias, and the requantization constants are
stored as per-block vectors, interleaved with the weights in one stream (`pack_stream`; layouts: the C
header). With K <= 32 the kernels keep a pair of rows in registers. Each layer's quant names the GEMM routine its K
and shifts need (`gemm_routine`), so a model links only the routines it runs.
- `tm_conv2d_s8_mve_1x1`: 1x1 filters without padding (any stride): the GEMM reads the input pixels in place.
- `tm_conv2d_s8_mve_im2col`: everything else (any filter, stride, padding, dilation): two pixels' windows
  are gathered into scratch, padding filled with the input zero point.
Refused (the next folder's kernels run): filters whose gathered rows would need more than
`MAX_SCRATCH` bytes of scratch.
In place (`in_place`): both read a pair's input (registers, or the scratch: the 1x1 with K > 32 copies its pair
there) before they write the pair's outputs, pairs in output raster order, so the output may start as far
before the input as no pair's outputs reach an input byte a later pair reads (`overlap.steps_before`): a
stride-1 1x1 with c_out <= c_in may lie exactly over its input, an expanding one end where its input ends.
"""
from __future__ import annotations

import numpy as np

from toolchain.compiler.ops.base import bias_id, fold_input_offset, per_channel_multipliers, window_geometry
from toolchain.compiler.ops.conv2d import conv2d_params
from toolchain.compiler.ops.mve.overlap import pixel_pairs, steps_before
from toolchain.compiler.ops.variants import InPlace, Variant, register_variant

LANES = 16  # int8 lanes of an MVE vector: the GEMM's rows are padded to whole vectors
BLOCK = 4  # output channels per GEMM block (four int32 lanes of the requantization)
MAX_SCRATCH = 8192  # bytes of arena the im2col rows may take


def _k16(w_shape) -> int:
    k = w_shape[1] * w_shape[2] * w_shape[3]
    return -(-k // LANES) * LANES


def _is_1x1(op, g) -> bool:
    w = g.tensors[op.inputs[1]]
    geo = window_geometry(op, g, w.shape[1], w.shape[2])
    return w.shape[1] == 1 and w.shape[2] == 1 and geo["pad"] == (0, 0)


def gemm_routine(k: int, shifts) -> str:
    """The tm_conv2d_mve_gemm a layer of K bytes per row and these shifts runs (tm_conv2d_s8.h, mve): named in
    its quant, so the firmware links only the routines its layers call."""
    rows = "held1" if k <= LANES else "held2" if k <= 2 * LANES else "rows_whole" if k % LANES == 0 else "rows"
    plain = all(s < 0 for s in shifts)  # no left shift, a right shift: the requantization without VSHL
    return f"tm_conv2d_mve_gemm_{rows}_{'plain' if plain else 'any'}"


def pack_filter(w: np.ndarray) -> np.ndarray:
    """[c_out, kh, kw, c_in] -> [c_out4 / 4][k16 / 16][4][16]; the first chunk of each row holds the
    K mod 16 leftover bytes, zero-padded at its end (tm_conv2d_s8.h, mve)."""
    c_out = w.shape[0]
    rows = w.reshape(c_out, -1).astype(np.int8)
    k = rows.shape[1]
    c4, k16 = -(-c_out // BLOCK) * BLOCK, -(-k // LANES) * LANES
    first = k - (k16 - LANES)
    padded = np.zeros((c4, k16), np.int8)
    padded[:c_out, :first] = rows[:, :first]
    padded[:c_out, LANES:] = rows[:, first:]
    return padded.reshape(c4 // BLOCK, BLOCK, k16 // LANES, LANES).transpose(0, 2, 1, 3).reshape(-1)


def requant_blocks(w: np.ndarray, bias: np.ndarray | None, input_offset: int,
                   multipliers: list[int], shifts: list[int]) -> np.ndarray:
    """Per block of 4 channels: bias' (input offset folded in, wrapped to int32), multiplier, left shift,
    negated right shift, each a 4-lane vector."""
    c_out = w.shape[0]
    folded = fold_input_offset(w, bias, input_offset)
    mult = np.resize(np.asarray(multipliers, np.int64), c_out)  # per tensor: one value for every channel
    shift = np.resize(np.asarray(shifts, np.int64), c_out)
    c4 = -(-c_out // BLOCK) * BLOCK
    fields = np.zeros((4, c4), np.int64)  # padding channels: all zero
    fields[:, :c_out] = [folded, mult, np.maximum(shift, 0), np.minimum(shift, 0)]
    return fields.reshape(4, c4 // BLOCK, BLOCK).transpose(1, 0, 2).reshape(-1)


def pack_stream(packed: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """Per block of 4 channels, its packed weight vectors (as little-endian int32 words) then its 4 constant
    vectors: one stream the kernels walk with a single pointer (tm_conv2d_s8.h, mve)."""
    n_blocks = blocks.size // (4 * BLOCK)
    weights = packed.astype(np.int8).reshape(n_blocks, -1).view("<i4").astype(np.int64)
    return np.concatenate([weights, blocks.reshape(-1, 4 * BLOCK)], axis=1).reshape(-1)


@register_variant("CONV_2D", "mve")
class Conv2DMve(Variant):
    def applies(self, op, g):
        w = g.tensors[op.inputs[1]]
        return _is_1x1(op, g) or 2 * _k16(w.shape) <= MAX_SCRATCH

    def kernel_for(self, op, g):
        return "tm_conv2d_s8_mve_1x1" if _is_1x1(op, g) else "tm_conv2d_s8_mve_im2col"

    def scratch_bytes(self, op, g):
        # tm_conv2d_s8_mve_1x1_get_buffer_size: two rows with K > 32 (copied), else 0;
        # tm_conv2d_s8_mve_im2col_get_buffer_size: two rows
        w = g.tensors[op.inputs[1]]
        if _is_1x1(op, g):
            return 2 * _k16(w.shape) if w.shape[3] > 32 else 0
        return 2 * _k16(w.shape)

    def in_place(self, op, g) -> InPlace | None:
        inp, w, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
        if len(inp.shape) != 4 or len(out.shape) != 4:
            return None
        geo = window_geometry(op, g, w.shape[1], w.shape[2])
        n, h_out, w_out, c_out = out.nhwc()
        _, h_in, w_in, c_in = inp.nhwc()
        per_image = h_out * w_out
        pixel = np.arange(n * per_image, dtype=np.int64)
        b, q = pixel // per_image, pixel % per_image
        iy = np.maximum((q // w_out) * geo["stride"][0] - geo["pad"][0], 0)
        ix = np.maximum((q % w_out) * geo["stride"][1] - geo["pad"][1], 0)
        first_read = b * (h_in * w_in * c_in) + (iy * w_in + ix) * c_in  # a lower bound: the window's corner
        pairs = np.asarray(pixel_pairs(n * per_image, None if _is_1x1(op, g) else per_image), np.int64)
        return steps_before((pairs[:, 1] + 1) * c_out, np.minimum(first_read[pairs[:, 0]], first_read[pairs[:, 1]]),
                            inp.nbytes)

    def emit(self, op, g, em):
        inp, w, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
        params = em.params(conv2d_params(op, g))
        bias = bias_id(op, 2)
        multipliers, shifts = per_channel_multipliers(inp, w, out, w.shape[0])
        blocks = requant_blocks(w.data, g.tensors[bias].data if bias is not None else None, -inp.zero_point,
                                multipliers, shifts)
        table = em.weights("int32_t", pack_stream(pack_filter(w.data), blocks), "mvestream",
                           f"{w.name} per 4 channels: [k/16][4][16] weight bytes; bias, multiplier, left, -right shift")
        filt = f"(const int8_t *){table}"
        gemm = gemm_routine(w.shape[1] * w.shape[2] * w.shape[3], shifts)
        quant = em.static("tm_conv2d_mve_quant", "mvequant", f"{{ .blocks = {table}, .gemm = &{gemm} }}")
        in_dims, w_dims, out_dims = (em.dims_value(d) for d in (inp.nhwc(), w.nhwc(), out.nhwc()))
        return (f"{self.kernel_for(op, g)}({em.context()}, &{params}, &{quant}, {in_dims}, {em.ptr(op.inputs[0])}, "
                f"{w_dims}, {filt}, {out_dims}, {em.ptr(op.outputs[0])})")
