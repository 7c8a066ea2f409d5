"""AVERAGE_POOL_2D on the dsp path: window sums of 4-8 channels per step in int16 lanes (SXTAB16)."""
from toolchain.compiler.ops.variants import SameArgsVariant, register_variant

MAX_COUNT = 256  # TM_AVG_POOL2D_DSP_MAX_COUNT: int16 lane sums stay exact up to 256 inputs of -128


@register_variant("AVERAGE_POOL_2D", "dsp")
class AvgPool2DDsp(SameArgsVariant):
    kernel = "tm_avg_pool2d_s8_dsp"

    def applies(self, op, g):
        return op.options["filterHeight"] * op.options["filterWidth"] <= MAX_COUNT

    def scratch_bytes(self, op, g):
        return 0  # tm_avg_pool2d_s8_dsp_get_buffer_size
