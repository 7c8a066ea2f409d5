"""TRANSPOSE_CONV on the dsp path: each output pixel's input pixels widened once into an int16 column in scratch,
shared by every output channel, two products per SMLAD (firmware/kernels/dsp/tm_transpose_conv_s8.c).
Not in place: later output rows read input rows again (the default: no overlap)."""
from toolchain.compiler.ops.transpose_conv import WEIGHTS, INPUT
from toolchain.compiler.ops.variants import SameArgsVariant, register_variant

# Scratch above this is refused (the portable kernel needs none): a filter window deeper than ~2,700 values.
MAX_SCRATCH = 16 * 1024


@register_variant("TRANSPOSE_CONV", "dsp")
class TransposeConvDsp(SameArgsVariant):
    kernel = "tm_transpose_conv_s8_dsp"

    def applies(self, op, g):
        return self.scratch_bytes(op, g) <= MAX_SCRATCH

    def scratch_bytes(self, op, g):
        """tm_transpose_conv_s8_dsp_get_buffer_size: a slot of round_up(c_in, 2) int16 and an int32 per filter tap."""
        _, kh, kw, _ = g.tensors[op.inputs[WEIGHTS]].shape
        c_in = g.tensors[op.inputs[INPUT]].shape[-1]
        return kh * kw * ((c_in + 1) // 2 * 2 * 2 + 4)
