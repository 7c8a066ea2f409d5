"""MEAN over H, W on the mve path: 16 channels per step, the requantization four lanes at a time."""
from toolchain.compiler.ops.mean import is_spatial
from toolchain.compiler.ops.variants import SameArgsVariant, register_variant


@register_variant("MEAN", "mve")
class MeanMve(SameArgsVariant):
    kernel = "tm_mean_s8_mve"

    def applies(self, op, g):
        return is_spatial(op, g)  # other axes: the portable kernel

    def scratch_bytes(self, op, g):
        return 0  # tm_mean_s8_mve_get_buffer_size
