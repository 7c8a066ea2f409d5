"""MEAN over H, W on the dsp path: channel sums four per LDR in int16 lanes (SXTAB16), any h * w."""
from toolchain.compiler.ops.mean import is_spatial
from toolchain.compiler.ops.variants import SameArgsVariant, register_variant


@register_variant("MEAN", "dsp")
class MeanDsp(SameArgsVariant):
    kernel = "tm_mean_s8_dsp"

    def applies(self, op, g):
        return is_spatial(op, g)  # other axes: the portable kernel

    def scratch_bytes(self, op, g):
        return 0  # tm_mean_s8_dsp_get_buffer_size
