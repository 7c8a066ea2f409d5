"""The lookup-table activations (ops/lut.py) on the mve path: `tm_lut_s8_mve` gathers sixteen table entries per
instruction, with the portable kernel's arguments and the same 256-byte table, so it covers every shape."""
from __future__ import annotations

from toolchain.compiler.ops.variants import SameArgsVariant, register_variant

LUT_KINDS = ("LOGISTIC", "TANH", "ELU", "HARD_SWISH", "LEAKY_RELU")


class LutMve(SameArgsVariant):
    kernel = "tm_lut_s8_mve"

    def applies(self, op, g):
        return True

    def scratch_bytes(self, op, g):
        return 0  # tm_lut_s8_mve_get_buffer_size


for _kind in LUT_KINDS:
    register_variant(_kind, "mve")(LutMve)
