"""ONNX graph -> tf_keras model, checked against onnxruntime, then int8 PTQ."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolchain.errors import ToolchainError
from toolchain.export.onnx_import.context import ONNX_OPS, Context, Value
from toolchain.export.onnx_import.load import attributes, load_onnx, prepare  # noqa: F401 (load_onnx: API)
from toolchain.tf import import_tf

TOLERANCE = 1e-4
# Values per sample of any map: far above what a microcontroller holds, and onnxruntime (which checks the Keras
# model) allocates each in float32, so a chain of Resize x64 must stop here, not in an out-of-memory.
MAX_MAP_ELEMENTS = 2**26


def _opset(model) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=17)


def problems_of(nodes: list, ctx: Context) -> list[str]:
    found = []
    for node in nodes:
        op = ONNX_OPS.get(node.op_type)
        where = f"{node.op_type} {node.name!r}" if node.name else node.op_type
        if op is None:
            found.append(f"{where}: operator {node.op_type} is not supported")
        else:
            found += [f"{where}: {p}" for p in op.check(node, attributes(node), ctx)]
    return found


def _graph_inputs(graph) -> list:
    """The inputs a caller feeds (old exporters also list the initializers as inputs)."""
    initializers = {t.name for t in graph.initializer}
    return [i for i in graph.input if i.name not in initializers]


def _input_shape(value_info) -> list[int | None]:
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else None for d in dims]


def onnx_to_keras(onnx_model, name: str = "onnx_model"):
    """A tf_keras model computing the same as `onnx_model` (an onnx.ModelProto), NHWC (see module docstring)."""
    _, keras = import_tf()
    graph = onnx_model.graph
    prepared = prepare(graph)
    ctx = Context(keras, prepared.constants, outputs={o.name for o in graph.output}, opset=_opset(onnx_model))
    nodes = prepared.nodes
    problems = problems_of(nodes, ctx)
    inputs = _graph_inputs(graph)
    for i in inputs:
        shape = _input_shape(i)
        if len(shape) not in (2, 4) or any(d is None for d in shape[1:]):
            problems.append(f"input {i.name!r}: shape {shape}; only [N, C, H, W] or [N, features] with static sizes")
        elif math.prod(shape[1:]) > MAX_MAP_ELEMENTS:
            problems.append(f"input {i.name!r}: shape {shape} has {math.prod(shape[1:])} elements per sample, more "
                            f"than {MAX_MAP_ELEMENTS}")
    if problems:
        raise ToolchainError(f"{len(problems)} ONNX node(s) cannot be converted:\n" +
                             "\n".join(f"  - {p}" for p in problems),
                             f"supported ONNX ops: {', '.join(ONNX_OPS)}")
    keras_inputs = []
    for i in inputs:
        shape = _input_shape(i)
        nhwc = (shape[2], shape[3], shape[1]) if len(shape) == 4 else (shape[1],)
        tensor = keras.Input(nhwc, name=re.sub(r"[^A-Za-z0-9_.-]", "_", i.name))
        keras_inputs.append(tensor)
        ctx.values[i.name] = Value(tensor)
    for node in nodes:
        value = ONNX_OPS.get(node.op_type).convert(node, attributes(node), ctx)
        size = math.prod(int(d) for d in value.tensor.shape[1:] if d is not None)
        if size > MAX_MAP_ELEMENTS:
            raise ToolchainError(f"ONNX node {node.op_type} {node.name!r}: its output {list(value.tensor.shape[1:])} "
                                 f"has {size} elements per sample, more than {MAX_MAP_ELEMENTS}")
        ctx.values[node.output[0]] = value
    outputs = []
    for o in graph.output:
        value = ctx.values[o.name]
        if value.perm is not None and not np.array_equal(value.perm, np.arange(value.perm.size)):
            raise ToolchainError(f"output {o.name!r} is a flattened spatial map: its feature order would differ "
                                 "from ONNX's (C, H, W)", "end the model with a Gemm/MatMul or a pooled map")
        outputs.append(value.tensor)
    return keras.Model(keras_inputs, outputs, name=re.sub(r"[^A-Za-z0-9_.-]", "_", name))


# ---- checking and the whole import -------------------------------------------------------------------

def to_nhwc(x: np.ndarray) -> np.ndarray:
    return np.transpose(x, (0, 2, 3, 1)) if x.ndim == 4 else x


def to_nchw(x: np.ndarray) -> np.ndarray:
    return np.transpose(x, (0, 3, 1, 2)) if x.ndim == 4 else x


def compare_with_onnxruntime(onnx_model, keras_model, calibration_nchw: np.ndarray) -> float:
    """The largest |Keras - onnxruntime| over all outputs for the calibration samples (ONNX layout in), fed
    in batches of the model's fixed batch size (PyTorch exports batch 1 unless told otherwise)."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    (onnx_input,) = session.get_inputs()
    x = calibration_nchw.astype(np.float32)
    fixed = onnx_input.shape[0] if isinstance(onnx_input.shape[0], int) and onnx_input.shape[0] > 0 else len(x)
    if len(x) < fixed:
        raise ToolchainError(f"the ONNX model takes batches of {fixed} samples, the calibration data has {len(x)}")
    x = x[:len(x) - len(x) % fixed]
    runs = [session.run(None, {onnx_input.name: x[i:i + fixed]}) for i in range(0, len(x), fixed)]
    want = [np.concatenate(outputs) for outputs in zip(*runs)]
    got = keras_model.predict(to_nhwc(x), verbose=0)
    got = got if isinstance(got, list) else [got]
    return max(float(np.max(np.abs(to_nchw(g) - w.reshape(to_nchw(g).shape)))) for g, w in zip(got, want))


@dataclass(frozen=True)
class OnnxImport:
    keras_model: Any
    max_abs_diff: float
    tflite: bytes | None
    calibration_nhwc: np.ndarray


def import_onnx(onnx_model, calibration_nchw: np.ndarray, tflite_path: Path | str | None = None, *,
                tolerance: float = TOLERANCE, quantize: bool = True) -> OnnxImport:
    """Convert, check against onnxruntime on the calibration data (in the ONNX model's layout), then PTQ
    with `convert_int8` on the same data transposed to NHWC."""
    from toolchain.export.tflite import convert_int8

    if isinstance(onnx_model, (str, Path)):
        name = Path(onnx_model).stem
        onnx_model = load_onnx(onnx_model)
    else:
        name = onnx_model.graph.name or "onnx_model"
    keras_model = onnx_to_keras(onnx_model, name)
    if len(keras_model.inputs) != 1:
        raise ToolchainError("ONNX import supports single-input models only")
    x = np.asarray(calibration_nchw, np.float32)
    shape = _input_shape(_graph_inputs(onnx_model.graph)[0])
    if x.ndim != len(shape) or tuple(x.shape[1:]) != tuple(shape[1:]):
        raise ToolchainError(f"calibration data has shape {x.shape}, the ONNX input is {shape}",
                             "give samples in the ONNX model's layout ([N, C, H, W] for images)")
    diff = compare_with_onnxruntime(onnx_model, keras_model, x)
    if not diff <= tolerance:
        raise ToolchainError(f"the converted Keras model differs from onnxruntime by {diff:.3g} (> {tolerance:g})")
    nhwc = to_nhwc(x)
    flatbuffer = convert_int8(keras_model, nhwc, tflite_path) if quantize else None
    return OnnxImport(keras_model, diff, flatbuffer, nhwc)
