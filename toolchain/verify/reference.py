"""Reference execution with LiteRT's BUILTIN_REF kernels: the bit-exact contract of the compiler."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from toolchain.compiler.frontend import load_tflite, parse_tflite


class ReferenceModel:
    """A .tflite (path or flatbuffer bytes) run by LiteRT's reference kernels; inputs and outputs in
    signature order (as the compiler)."""

    def __init__(self, model: Path | str | bytes, preserve_all_tensors: bool = False):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        g = parse_tflite(model) if isinstance(model, bytes) else load_tflite(model)
        self.inputs = [g.tensors[t] for t in g.inputs]
        self.outputs = [g.tensors[t] for t in g.outputs]
        self.input_names, self.output_names = list(g.input_names), list(g.output_names)
        source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
        self._interp = Interpreter(**source, experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                                   experimental_preserve_all_tensors=preserve_all_tensors)
        self._interp.allocate_tensors()

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        for t, x in zip(self.inputs, inputs):
            self._interp.set_tensor(t.id, np.asarray(x).reshape(t.shape))
        self._interp.invoke()
        return [self._interp.get_tensor(t.id).copy() for t in self.outputs]


class ReferenceTensors(ReferenceModel):
    """The same reference, keeping every intermediate tensor (for locating a difference layer by layer)."""

    def __init__(self, model: Path | str | bytes):
        super().__init__(model, preserve_all_tensors=True)

    def run_all(self, inputs: list[np.ndarray]) -> dict[int, np.ndarray]:
        """Every tensor LiteRT holds after one inference, by tensor id."""
        self.run(inputs)
        found = {}
        for detail in self._interp.get_tensor_details():
            try:
                found[detail["index"]] = self._interp.get_tensor(detail["index"]).copy()
            except ValueError:  # a tensor with no data (e.g. optional, never allocated)
                continue
        return found
