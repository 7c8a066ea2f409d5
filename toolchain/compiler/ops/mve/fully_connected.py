"""FULLY_CONNECTED on the mve path: VMLADAVA.S8 over rows interleaved in blocks of four by 16 columns, the input
read in place (a depth not a multiple of 16 ends with one zeroing predicated load), four outputs requantized as
one vector. No scratch: every block of four rows reads the whole input row, so the output never lies over it.

Shares the dsp variant's preparation (folded bias, fast requantization, one quantization entry per channel: the
kernel loads four channels' values as a vector).
"""
from __future__ import annotations

from toolchain.compiler.ops.dsp.fully_connected import fast_applies, fast_call, interleaved
from toolchain.compiler.ops.variants import Variant, register_variant

ROWS, CHUNK = 4, 16  # rows per block, weights per VMLADAVA (ROWS, CHUNK in the C file)


@register_variant("FULLY_CONNECTED", "mve")
class FullyConnectedMve(Variant):
    kernel = "tm_fully_connected_s8_mve"

    def applies(self, op, g):
        return fast_applies(op, g)

    def kernel_for(self, op, g):
        return self.kernel

    def scratch_bytes(self, op, g):
        return 0  # tm_fully_connected_s8_mve_get_buffer_size: the input is read in place

    def emit(self, op, g, em):
        kernel = self.kernel + ("_tflm" if em.reference == "tflm" else "")
        return fast_call(kernel, op, g, em, interleaved(g.tensors[op.inputs[1]].data, ROWS, CHUNK, CHUNK),
                         f"FC weights, blocks of {ROWS} rows interleaved by {CHUNK} columns, rows padded to {CHUNK}")
