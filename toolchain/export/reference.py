"""Reference execution with LiteRT's BUILTIN_REF kernels: the bit-exact contract of the compiler."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from toolchain.compiler.frontend import load_tflite


class ReferenceModel:
    """A .tflite run by LiteRT's reference kernels; inputs and outputs in signature order (as the compiler)."""

    def __init__(self, path: Path | str):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        g = load_tflite(path)
        self.inputs = [g.tensors[t] for t in g.inputs]
        self.outputs = [g.tensors[t] for t in g.outputs]
        self.input_names, self.output_names = list(g.input_names), list(g.output_names)
        self._interp = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        self._interp.allocate_tensors()

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        for t, x in zip(self.inputs, inputs):
            self._interp.set_tensor(t.id, np.asarray(x).reshape(t.shape))
        self._interp.invoke()
        return [self._interp.get_tensor(t.id).copy() for t in self.outputs]
