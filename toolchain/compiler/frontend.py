"""TFLite flatbuffer -> IR Graph, using the schema module shipped with ai_edge_litert."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from toolchain.compiler.ir import Graph, Op, Quant, Tensor
from toolchain.errors import ModelError

_TENSOR_TYPES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
_BUILTIN_OPS = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_ACTIVATIONS = {v: k for k, v in vars(schema.ActivationFunctionType).items() if not k.startswith("_")}
_PADDINGS = {v: k for k, v in vars(schema.Padding).items() if not k.startswith("_")}
_NUMPY_TYPES = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
                "float32": np.float32, "float16": np.float16, "bool": np.bool_}
# Ops that may legitimately compute in float: they are the model's float <-> int8 edges.
_EDGE_OPS = {"QUANTIZE", "DEQUANTIZE"}


def load_tflite(path: Path | str) -> Graph:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    return parse_tflite(path.read_bytes(), str(path))


def parse_tflite(buf: bytes, origin: str = "<bytes>") -> Graph:
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ModelError(f"{origin} is not a TFLite flatbuffer (missing the 'TFL3' identifier)",
                         "pass the .tflite file written by TFLiteConverter (or `tinyml export`)")
    try:
        model = schema.ModelT.InitFromPackedBuf(buf, 0)
        graph = _build_graph(model, buf)
    except ModelError:
        raise
    except Exception as exc:  # the flatbuffer library raises anything on truncated or corrupt input
        raise ModelError(f"{origin} is corrupt or truncated: {type(exc).__name__}: {exc}",
                         "re-export the model; the file may have been cut short while copying") from exc
    _require_int8(graph, origin)
    return graph


def _name(raw) -> str:
    return raw.decode() if isinstance(raw, bytes) else (raw or "")


def _buffer_data(model, buf: bytes, index: int) -> bytes | None:
    if not model.buffers or index >= len(model.buffers):
        return None
    b = model.buffers[index]
    if b.data is not None and len(b.data):
        return bytes(np.asarray(b.data, dtype=np.uint8))
    if getattr(b, "offset", 0) > 1 and getattr(b, "size", 0):
        return buf[b.offset: b.offset + b.size]
    return None


def _build_graph(model, buf: bytes) -> Graph:
    if not model.subgraphs:
        raise ModelError("the model has no subgraph")
    if len(model.subgraphs) > 1:
        raise ModelError(f"the model has {len(model.subgraphs)} subgraphs (control flow); "
                         "only single-graph models compile")
    sg = model.subgraphs[0]
    tensors: dict[int, Tensor] = {}
    for tid, t in enumerate(sg.tensors or []):
        dtype = _TENSOR_TYPES.get(t.type, f"type{t.type}").lower()
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        raw = _buffer_data(model, buf, t.buffer)
        data = None
        if raw is not None and dtype in _NUMPY_TYPES:
            data = np.frombuffer(raw, dtype=_NUMPY_TYPES[dtype]).reshape(shape).copy()
        q = t.quantization
        quant = None
        if q is not None and q.scale is not None and len(q.scale):
            zps = q.zeroPoint if q.zeroPoint is not None else [0] * len(q.scale)
            quant = Quant(tuple(float(s) for s in q.scale), tuple(int(z) for z in zps), int(q.quantizedDimension))
        tensors[tid] = Tensor(tid, _name(t.name), shape, dtype, quant, data)

    ops = []
    for i, o in enumerate(sg.operators or []):
        code = model.operatorCodes[o.opcodeIndex]
        kind = _BUILTIN_OPS.get(max(code.builtinCode, code.deprecatedBuiltinCode), "UNKNOWN")
        if kind == "CUSTOM":
            kind = f"CUSTOM:{_name(code.customCode)}"
        outputs = tuple(int(x) for x in (o.outputs if o.outputs is not None else ()))
        first_out = tensors[outputs[0]].name if outputs else "?"
        ops.append(Op(kind, tuple(int(x) for x in (o.inputs if o.inputs is not None else ())), outputs,
                      _options(o.builtinOptions), f"op #{i} {kind} -> '{first_out}'"))

    inputs = tuple(int(x) for x in sg.inputs)
    outputs = tuple(int(x) for x in sg.outputs)
    input_names = tuple(tensors[t].name for t in inputs)
    output_names = tuple(tensors[t].name for t in outputs)
    if model.signatureDefs:
        # Signature order and names are what users see in Keras; tensor order in the subgraph is not.
        sig = model.signatureDefs[0]
        inputs = tuple(int(m.tensorIndex) for m in sig.inputs)
        input_names = tuple(_name(m.name) for m in sig.inputs)
        outputs = tuple(int(m.tensorIndex) for m in sig.outputs)
        output_names = tuple(_name(m.name) for m in sig.outputs)
    return Graph(tensors, tuple(ops), inputs, outputs, input_names, output_names)


def _options(opts) -> dict:
    if opts is None:
        return {}
    out = {}
    for key, value in vars(opts).items():
        if key == "fusedActivationFunction":
            value = _ACTIVATIONS.get(value, str(value))
        elif key == "padding":
            value = _PADDINGS.get(value, str(value))
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        out[key] = value
    return out


def _require_int8(g: Graph, origin: str) -> None:
    float_ops = []
    for op in g.ops:
        if op.kind in _EDGE_OPS:
            continue
        for tid in op.inputs + op.outputs:
            if tid >= 0 and g.tensors[tid].dtype == "float32" and not g.tensors[tid].is_const:
                float_ops.append(op.location)
                break
    if float_ops:
        listed = "; ".join(float_ops[:5]) + (" ..." if len(float_ops) > 5 else "")
        raise ModelError(
            f"{origin} is not fully int8-quantized: {len(float_ops)} op(s) compute in float32 ({listed})",
            "convert with full-integer post-training quantization: a representative dataset, "
            "supported_ops=[TFLITE_BUILTINS_INT8] and int8 input/output types (`tinyml export` does this)")
