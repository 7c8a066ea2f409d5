from toolchain.compiler.ops.base import OpDef, register


@register("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
class Reshape(OpDef):
    """Changes the shape only: the alias pass removes it and the output shares the input's bytes."""

    constraints = "no code: the output shares the input's storage"

    aliases_output = True
    # RESHAPE's new shape may come as a tensor (the stored output shape is what counts); LiteRT crashes
    # when that input is given as -1, so it is not optional.
    num_inputs = (1, 2)

    def scratch_bytes(self, op, g):
        return 0  # no kernel

    def check(self, op, g):
        inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        problems = []
        if inp.nbytes != out.nbytes or inp.dtype != out.dtype:
            problems.append(f"input ({inp.dtype}, {inp.nbytes} B) and output ({out.dtype}, {out.nbytes} B) differ")
        if inp.quant != out.quant:
            problems.append("input and output quantization differ")
        return problems
