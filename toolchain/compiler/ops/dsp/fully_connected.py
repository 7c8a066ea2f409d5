"""FULLY_CONNECTED on the dsp path: SMLAD over rows interleaved in blocks of four, input widened once per batch row.

The weights are re-laid out (firmware/kernels/dsp/tm_fully_connected_s8.h), the input offset folded into the bias,
and the requantization given as a fast (multiplier, shift) plus, for LiteRT's single rounding, the exact scale the
kernel falls back on near a rounding boundary. The mve variant (ops/mve/fully_connected.py) shares the helpers.

Scratch: the widened input row (2 * padded depth bytes) where the layer's `scratch_budget` holds it, else none
(the kernel then widens each input word as it loads it, about 10% more instructions, except for the outputs
before the last 2 * padded depth bytes of a longer output row, which holds the widened row meanwhile).
In place (`in_place`), widened form only: a batch row is read whole into scratch before any of its outputs is
written, so with one row the output may lie anywhere over the input, and with more each row's outputs must end
before the next row's input starts. Without scratch every output reads the whole row: no overlap.
"""
from __future__ import annotations

import numpy as np

from toolchain.compiler.ops.base import OPS, bias_id, fold_input_offset
from toolchain.compiler.ops.fully_connected import decompose_scale, fc_params, rescales, tflm_multipliers
from toolchain.compiler.ops.params import FullyConnectedQuant, Symbol
from toolchain.compiler.ops.variants import InPlace, Variant, register_variant, scratch_budget

ROWS, STEP = 4, 16  # rows per block and the padding of each row (ROWS, STEP in the C file)
HIGH_SHIFTS = range(2, 32)  # LiteRT rounding: the layer's high_shift (scales below 2^-2)


def high_shift(scales: list[float]) -> int:
    """The layer's high_shift: the largest in [2, 31] that keeps every channel's multiplier below 2^32
    (scale * 2^(32 + high_shift) < 2^32 for the largest scale); outside HIGH_SHIFTS: no fast rounding."""
    _, e = decompose_scale(max(scales))  # scale in [2^(e + 52), 2^(e + 53))
    return min(-e - 53, 31)


def fast_multipliers(scales: list[float], shift: int) -> list[int]:
    """floor(scale * 2^(32 + shift)) per channel, exactly (from the double's mantissa and exponent)."""
    out = []
    for s in scales:
        m, e = decompose_scale(s)
        k = e + 32 + shift
        out.append(m << k if k >= 0 else m >> -k)
    return out


def litert_fast_ok(op, g) -> bool:
    inp, w, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    return high_shift(rescales(inp, w, out)) in HIGH_SHIFTS


def folded_bias(op, g) -> np.ndarray:
    """bias[o] + input_offset * sum_k w[o, k], wrapping in int32 as the accumulator does."""
    inp, w = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    bias = bias_id(op, 2)
    return fold_input_offset(w.data, g.tensors[bias].data if bias is not None else None, -inp.zero_point)


def fast_quant(op, g, em) -> str:
    """The tm_fully_connected_fast_quant of this layer for em.reference's rounding: one entry per output channel
    even for per-tensor weights (the kernels index the arrays by channel without a branch)."""
    inp, w, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    scales = rescales(inp, w, out)
    if len(scales) == 1:
        scales = scales * w.shape[0]
    if em.reference == "tflm":
        multipliers, shifts = tflm_multipliers(scales)
        exact, fast_shift, shift_array = "NULL", 0, em.array("int32_t", shifts, "fc_shift")
    else:
        fast_shift, shift_array = high_shift(scales), "NULL"
        multipliers = fast_multipliers(scales, fast_shift)
        assert all(m < 1 << 32 for m in multipliers), scales
        multipliers = [m - (1 << 32) if m >= 1 << 31 else m for m in multipliers]  # uint32 bits as int32
        mantissas, exponents = zip(*map(decompose_scale, scales))
        exact = "&" + em.params(FullyConnectedQuant(
            mantissa_hi=Symbol(em.array("uint32_t", [m >> 32 for m in mantissas], "fc_mantissa_hi")),
            mantissa_lo=Symbol(em.array("uint32_t", [m & 0xFFFFFFFF for m in mantissas], "fc_mantissa_lo")),
            exponent=Symbol(em.array("int32_t", exponents, "fc_exponent")),
            per_channel=1))
    init = (f"{{ .multiplier = {em.array('int32_t', multipliers, 'fc_mult')}, .shift = {shift_array}, "
            f".high_shift = {fast_shift}, .exact = {exact}, .per_channel = 1 }}")
    return em.static("tm_fully_connected_fast_quant", "fc_fast_quant", init)


def padded(depth: int, pad: int = STEP) -> int:
    return -(-depth // pad) * pad


def interleaved(weights: np.ndarray, rows: int, pad: int, group: int) -> np.ndarray:
    """Rows zero-padded to a multiple of `pad`; blocks of `rows` rows interleaved by `group` columns, the
    remaining rows after them in order (dsp and mve tm_fully_connected_s8.h)."""
    units, depth = weights.shape
    k = -(-depth // pad) * pad
    w = np.zeros((units, k), np.int8)
    w[:, :depth] = weights
    blocked = units // rows * rows
    blocks = w[:blocked].reshape(blocked // rows, rows, k // group, group).transpose(0, 2, 1, 3)
    return np.concatenate([blocks.reshape(-1), w[blocked:].reshape(-1)])


def fast_call(kernel: str, op, g, em, weights: np.ndarray, comment: str) -> str:
    """The call of a fast FC kernel: `weights` re-laid out, the folded bias, the fast quant."""
    params = em.params(fc_params(op, g))
    quant = fast_quant(op, g, em)
    filt = em.weights("int8_t", weights, "fc_filter", comment)
    bias = em.weights("int32_t", folded_bias(op, g), "fc_bias", "bias + input_offset * sum(weights)")
    in_dims, w_dims, out_dims = (em.dims_value(d) for d in OPS.get(op.kind).kernel_dims(op, g))
    return (f"{kernel}({em.context()}, &{params}, &{quant}, {in_dims}, {em.ptr(op.inputs[0])}, "
            f"{w_dims}, {filt}, {bias}, {out_dims}, {em.ptr(op.outputs[0])})")


def fast_applies(op, g) -> bool:
    """Symmetric weights (always, by the op's check) and, for LiteRT's rounding, scales in the fast range;
    the reference is not known here, so the LiteRT range decides for both."""
    return g.tensors[op.inputs[1]].zero_point == 0 and litert_fast_ok(op, g)


@register_variant("FULLY_CONNECTED", "dsp")
class FullyConnectedDsp(Variant):
    kernel = "tm_fully_connected_s8_dsp"

    def applies(self, op, g):
        return fast_applies(op, g)

    def kernel_for(self, op, g):
        return self.kernel

    def _widened(self, op, g) -> int:
        """tm_fully_connected_s8_dsp_widened_size: the scratch of the widened form."""
        return 2 * padded(g.tensors[op.inputs[1]].shape[1])

    def scratch_bytes(self, op, g):
        """tm_fully_connected_s8_dsp_get_buffer_size (0), or the widened form's where the budget holds it."""
        widened = self._widened(op, g)
        return widened if scratch_budget(op) >= widened else 0

    def in_place(self, op, g):
        if self.scratch_bytes(op, g) == 0:
            return None
        inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        depth, units = g.tensors[op.inputs[1]].shape[1], out.shape[-1]
        rows = inp.size // depth
        if rows == 1:
            return InPlace(before=-inp.nbytes, after=-out.nbytes, same=True)
        before = max(b * (units - depth) for b in range(1, rows))  # row b - 1's outputs end, row b's input starts
        return InPlace(before=before, same=before <= 0)

    def emit(self, op, g, em):
        kernel = self.kernel + ("_tflm" if em.reference == "tflm" else "")
        return fast_call(kernel, op, g, em, interleaved(g.tensors[op.inputs[1]].data, ROWS, STEP, 4),
                         f"FC weights, blocks of {ROWS} rows interleaved by 4 columns, rows padded to {STEP}")

