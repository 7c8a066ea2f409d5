"""How far an mve kernel's output may lie over its input 0, from the order the kernel reads and writes.

A kernel runs in steps (a pair of pixels, an output row, a band, a batch); a step reads all the input it needs
(into registers or scratch) before it writes its outputs, and the outputs go out in increasing order. The output
may then start `before` bytes before the input (InPlace.before) where, after every step, the output written so
far ends at or below the first input byte a later step still reads from the input.
"""
from __future__ import annotations

import numpy as np

from toolchain.compiler.ops.variants import InPlace


def steps_before(out_ends: np.ndarray, first_reads: np.ndarray, in_bytes: int) -> InPlace:
    """Steps in order: out_ends[t] the output bytes written after step t (from the output's start),
    first_reads[t] the lowest input byte step t reads (from the input's start). No later step: any overlap
    (-in_bytes: up to the input's last byte)."""
    out_ends, first_reads = np.asarray(out_ends, np.int64), np.asarray(first_reads, np.int64)
    if len(out_ends) < 2:
        return InPlace(before=-in_bytes)
    later = np.minimum.accumulate(first_reads[::-1])[::-1][1:]  # lowest byte read by any later step
    return InPlace(before=int(np.max(out_ends[:-1] - later)))


def pixel_pairs(n_pixels: int, per_batch: int | None = None) -> list[tuple[int, int]]:
    """[first, last] output pixels of each pair, in order; per_batch: pairs restart at each batch (the last pixel
    of an odd batch alone), else they run on across batches."""
    if per_batch is None:
        return [(p, min(p + 1, n_pixels - 1)) for p in range(0, n_pixels, 2)]
    batches = n_pixels // per_batch
    return [(b * per_batch + p, b * per_batch + min(p + 1, per_batch - 1))
            for b in range(batches) for p in range(0, per_batch, 2)]
