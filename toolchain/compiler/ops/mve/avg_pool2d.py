"""AVERAGE_POOL_2D on the mve path: 16 channels per step in int16 lanes, division by a reciprocal multiply."""
from toolchain.compiler.ops.variants import SameArgsVariant, register_variant

MAX_COUNT = 256  # TM_AVG_POOL2D_MVE_MAX_COUNT: int16 lane sums and the reciprocal stay exact up to 256 inputs


@register_variant("AVERAGE_POOL_2D", "mve")
class AvgPool2DMve(SameArgsVariant):
    kernel = "tm_avg_pool2d_s8_mve"

    def applies(self, op, g):
        return op.options["filterHeight"] * op.options["filterWidth"] <= MAX_COUNT

    def scratch_bytes(self, op, g):
        return 0  # tm_avg_pool2d_s8_mve_get_buffer_size
