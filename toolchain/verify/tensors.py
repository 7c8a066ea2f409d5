"""Where does it differ? Every layer's output from the device against LiteRT's intermediate tensors.

The firmware (built with TM_DUMP_TENSORS) prints each layer's output tensor; LiteRT BUILTIN_REF, run
with `experimental_preserve_all_tensors`, keeps every intermediate tensor. Layers are compared in the
order the device ran them; the first that differs is where to look (later ones inherit the error).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LayerDiff:
    sample: int
    layer: int
    op: str
    tensor: int
    name: str
    differing: int  # elements that differ
    size: int
    max_abs_diff: int
    first_positions: list[int]
    device: list[int]
    reference: list[int]

    def describe(self) -> str:
        return (f"sample {self.sample}: first difference at layer {self.layer} ({self.op}, tensor {self.tensor} "
                f"'{self.name}'): {self.differing}/{self.size} values differ, by up to {self.max_abs_diff} "
                f"(positions {self.first_positions}: device {self.device} vs reference {self.reference})")


@dataclass(frozen=True)
class TensorComparison:
    samples: int
    layers_compared: int  # (sample, layer) pairs
    first_differences: list[LayerDiff]  # one per sample that differs somewhere
    reference: str = "LiteRT BUILTIN_REF"  # the interpreter whose intermediate tensors were compared

    @property
    def identical(self) -> bool:
        return not self.first_differences

    def summary(self) -> str:
        if self.identical:
            return (f"every layer's output identical to {self.reference}'s intermediate tensor "
                    f"({self.layers_compared} layer outputs over {self.samples} sample(s))")
        return "\n".join(d.describe() for d in self.first_differences)


def compare_layer_tensors(dumps: dict[int, list[tuple[int, int, bytes]]], reference: list[dict[int, np.ndarray]],
                          layer_ops: list[str], tensor_names: dict[int, str],
                          reference_name: str = "LiteRT BUILTIN_REF") -> TensorComparison:
    """`dumps[k]`: (layer, tensor id, raw bytes) in the order the device printed them for sample k;
    `reference[k]`: LiteRT's tensors of sample k by tensor id."""
    firsts, compared = [], 0
    for k in sorted(dumps):
        for layer, tid, raw in dumps[k]:
            want = reference[k][tid]
            got = np.frombuffer(raw, dtype=want.dtype)
            compared += 1
            flat = want.reshape(-1)
            if got.size != flat.size:
                firsts.append(LayerDiff(k, layer, layer_ops[layer], tid, tensor_names.get(tid, "?"), flat.size,
                                        flat.size, -1, [], [], []))
                break
            diff = np.flatnonzero(got != flat)
            if diff.size:
                pos = diff[:6]
                delta = np.abs(got.astype(np.int64) - flat.astype(np.int64))
                firsts.append(LayerDiff(k, layer, layer_ops[layer], tid, tensor_names.get(tid, "?"), int(diff.size),
                                        int(flat.size), int(delta.max()), pos.tolist(), got[pos].tolist(),
                                        flat[pos].tolist()))
                break
    return TensorComparison(len(dumps), compared, firsts, reference_name)
