"""Reference execution: the bit-exact contract of the compiler.

LiteRT's BUILTIN_REF kernels are the default reference; tflite-micro's interpreter is the other (`--reference
tflm`: the two differ only in FULLY_CONNECTED's rounding). `reference_model` is the one place that picks the
interpreter for a compiled model's `plan.reference`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from toolchain.compiler.frontend import load_tflite, parse_tflite
from toolchain.errors import ToolchainError

REFERENCE_NAMES = {"litert": "LiteRT BUILTIN_REF", "tflm": "tflite-micro"}
SHORT_NAMES = {"litert": "LiteRT", "tflm": "tflite-micro"}  # the interpreters, in error messages


class ReferenceModel:
    """A .tflite (path or flatbuffer bytes) run by LiteRT's reference kernels; inputs and outputs in
    signature order (as the compiler)."""

    name = REFERENCE_NAMES["litert"]

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


class TflmReferenceModel:
    """The same interface run by tflite-micro's interpreter (FULLY_CONNECTED with TFLite's double rounding).
    `preserve_all_tensors`: every operator output becomes a model output (tflite-micro reuses the memory of
    intermediate tensors), so `run_all` can hand them all back."""

    name = REFERENCE_NAMES["tflm"]

    def __init__(self, model: Path | str | bytes, preserve_all_tensors: bool = False):
        runtime = _tflm_runtime()
        data = model if isinstance(model, bytes) else Path(model).read_bytes()
        g = parse_tflite(data)
        self.inputs = [g.tensors[t] for t in g.inputs]
        self.outputs = [g.tensors[t] for t in g.outputs]
        self.input_names, self.output_names = list(g.input_names), list(g.output_names)
        sg_inputs, sg_outputs = _subgraph_io(data)
        if preserve_all_tensors:
            produced = [t for op in g.ops for t in op.outputs if t >= 0 and t not in sg_outputs]
            sg_outputs = sg_outputs + list(dict.fromkeys(produced))
            data = _with_outputs(data, sg_outputs)
        # tflite-micro indexes inputs and outputs by subgraph position, the compiler by signature order.
        self._input_index = [sg_inputs.index(t.id) for t in self.inputs]
        self._output_index = {tid: i for i, tid in enumerate(sg_outputs)}
        try:
            self._interp = runtime.Interpreter.from_bytes(data)
        except (RuntimeError, ValueError) as exc:
            raise ToolchainError(f"tflite-micro cannot load the model: {str(exc).strip()[:300]}") from exc

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        self._invoke(inputs)
        return [self._output(t.id) for t in self.outputs]

    def run_all(self, inputs: list[np.ndarray]) -> dict[int, np.ndarray]:
        """Every operator output (and model output) after one inference, by tensor id."""
        self._invoke(inputs)
        return {tid: self._output(tid) for tid in self._output_index}

    def _invoke(self, inputs: list[np.ndarray]) -> None:
        self._interp.reset()
        for index, t, x in zip(self._input_index, self.inputs, inputs):
            self._interp.set_input(np.asarray(x).reshape(t.shape), index)
        self._interp.invoke()

    def _output(self, tid: int) -> np.ndarray:
        return np.array(self._interp.get_output(self._output_index[tid]), copy=True)


class TflmReferenceTensors(TflmReferenceModel):
    def __init__(self, model: Path | str | bytes):
        super().__init__(model, preserve_all_tensors=True)


def reference_model(model: Path | str | bytes, reference: str = "litert", all_tensors: bool = False,
                    litert: type = ReferenceModel):
    """The interpreter whose outputs `reference` (a ModelPlan's `reference`) promises bit-exactly; with
    `all_tensors` one whose `run_all` gives every intermediate tensor as well. `litert`: the LiteRT runner
    class when not `all_tensors` (the callers pass the name they import, which tests may substitute)."""
    if reference == "tflm":
        return TflmReferenceTensors(model) if all_tensors else TflmReferenceModel(model)
    if reference != "litert":
        raise ToolchainError(f"unknown reference {reference!r}", f"choose one of: {', '.join(REFERENCE_NAMES)}")
    return ReferenceTensors(model) if all_tensors else litert(model)


def _tflm_runtime():
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError as exc:
        raise ToolchainError("the tflite-micro reference is not installed: pip install --pre tflite-micro") from exc
    return runtime


def _subgraph_io(data: bytes) -> tuple[list[int], list[int]]:
    from ai_edge_litert import schema_py_generated as schema

    sg = schema.Model.GetRootAsModel(data, 0).Subgraphs(0)
    return ([int(sg.Inputs(i)) for i in range(sg.InputsLength())],
            [int(sg.Outputs(i)) for i in range(sg.OutputsLength())])


def _with_outputs(data: bytes, outputs: list[int]) -> bytes:
    """The model with its first subgraph's outputs replaced by `outputs` (tensor ids)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    model.subgraphs[0].outputs = np.asarray(outputs, dtype=np.int32)
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
