from toolchain.compiler.ops.base import (
    OpDef, activation, check_activation, check_window_shape, register, require_int8, same_quant, window_geometry,
)


class _Pool2D(OpDef):
    kernel = ""

    def check(self, op, g):
        problems = require_int8(g, op) + check_activation(op)
        inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        if len(inp.shape) != 4:
            return problems + ["only 4-D NHWC input is supported"]
        if "filterHeight" not in op.options or "filterWidth" not in op.options:
            return problems + ["the pool size (Pool2DOptions) is missing"]
        if not problems and not same_quant(inp, out):
            problems.append("input and output quantization differ (TFLite requires them equal)")
        return problems + check_window_shape(op, g, op.options["filterHeight"], op.options["filterWidth"],
                                             inp.shape[3])

    def emit(self, op, g, em):
        inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        kh, kw = op.options["filterHeight"], op.options["filterWidth"]
        geo = window_geometry(op, g, kh, kw)
        lo, hi = activation(op, out)
        params = em.static("tm_pool_params", "pool", (
            f"{{ {{ {geo['stride'][0]}, {geo['stride'][1]} }}, {{ {geo['pad'][0]}, {geo['pad'][1]} }}, "
            f"{{ {kh}, {kw} }}, {{ {lo}, {hi} }} }}"))
        ctx = f"{em.context()}, " if self.kernel == "tm_avgpool_s8" else ""
        return (f"{self.kernel}({ctx}&{params}, {em.dims(inp)}, {em.ptr(inp.id)}, "
                f"{em.dims(out)}, {em.ptr(out.id)})")


@register("AVERAGE_POOL_2D")
class AveragePool2D(_Pool2D):
    kernel = "tm_avgpool_s8"


@register("MAX_POOL_2D")
class MaxPool2D(_Pool2D):
    kernel = "tm_maxpool_s8"
