"""The lookup-table activations (ops/lut.py) on the dsp path: `tm_lut_s8_dsp` reads and writes four elements per
32-bit access, with the portable kernel's arguments and the same 256-byte table, so it covers every shape (on
the mve path tm_lut_s8_mve's gathers come first)."""
from __future__ import annotations

from toolchain.compiler.ops.mve.lut import LUT_KINDS
from toolchain.compiler.ops.variants import SameArgsVariant, register_variant


class LutDsp(SameArgsVariant):
    kernel = "tm_lut_s8_dsp"

    def applies(self, op, g):
        return True

    def scratch_bytes(self, op, g):
        return 0  # tm_lut_s8_dsp_get_buffer_size


for _kind in LUT_KINDS:
    register_variant(_kind, "dsp")(LutDsp)
