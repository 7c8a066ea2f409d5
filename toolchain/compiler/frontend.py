"""TFLite flatbuffer -> IR Graph, using the schema module shipped with ai_edge_litert."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from toolchain.compiler.ir import DTYPE_BYTES, Graph, Op, Quant, Tensor
from toolchain.compiler.validate import check_graph, check_references
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
        _require_one_subgraph(model)
        _refuse_invalid(origin, check_references(model))
        graph = _build_graph(model, buf, origin)
    except ModelError:
        raise
    except Exception as exc:  # the flatbuffer library raises anything on truncated or corrupt input
        raise ModelError(f"{origin} is corrupt or truncated: {type(exc).__name__}: {exc}",
                         "re-export the model; the file may have been cut short while copying") from exc
    _refuse_fused_rnns(graph, origin)
    _refuse_invalid(origin, check_graph(graph))
    _require_int8(graph, origin)
    return graph


# Whole recurrent layers in one op; their int8 form has intermediate tensors of shape [0] that read as invalid.
_FUSED_RNNS = ("UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM", "UNIDIRECTIONAL_SEQUENCE_RNN",
               "BIDIRECTIONAL_SEQUENCE_RNN", "LSTM", "RNN")


def _refuse_fused_rnns(g: Graph, origin: str) -> None:
    fused = next((op for op in g.ops if op.kind in _FUSED_RNNS), None)
    if fused is not None:
        raise ModelError(f"{origin}: {fused.location} is a fused recurrent layer, which is not supported",
                         "build the Keras RNN layer with unroll=True so the "
                         "converter writes its steps as FULLY_CONNECTED, SPLIT, LOGISTIC, TANH, MUL and ADD")


def _require_one_subgraph(model) -> None:
    if not model.subgraphs:
        raise ModelError("the model has no subgraph")
    if len(model.subgraphs) > 1:
        raise ModelError(f"the model has {len(model.subgraphs)} subgraphs (control flow); "
                         "only single-graph models compile")


_PROBLEMS_SHOWN = 10


def _refuse_invalid(origin: str, problems: list[str]) -> None:
    if not problems:
        return
    listed = "\n".join(f"  - {p}" for p in problems[:_PROBLEMS_SHOWN])
    more = f"\n  ... and {len(problems) - _PROBLEMS_SHOWN} more" if len(problems) > _PROBLEMS_SHOWN else ""
    raise ModelError(f"{origin} is not a valid model ({len(problems)} problem(s)):\n{listed}{more}",
                     "the file was edited or written by a broken tool; re-export it with TFLiteConverter "
                     "(or `tinyml export`)")


_NAME_MAX = 200


def _name(raw) -> str:
    """A model's string as printable text: invalid UTF-8 and control characters escaped, cut to a length
    (names reach terminals, JSON and, through codegen's own escaping, C comments)."""
    text = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else (raw or "")
    text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return text if len(text) <= _NAME_MAX else text[:_NAME_MAX - 3] + "..."


def _buffer_data(model, buf: bytes, index: int) -> bytes | None:
    """The bytes of buffer `index` (checked in range), inline or, in models over 2 GB, at an offset in the file."""
    if not model.buffers:
        return None
    b = model.buffers[index]
    if b.data is not None and len(b.data):
        return bytes(np.asarray(b.data, dtype=np.uint8))
    if getattr(b, "offset", 0) > 1 and getattr(b, "size", 0):
        return buf[b.offset: b.offset + b.size]
    return None


def _constant(raw: bytes, dtype: str, shape: tuple[int, ...], where: str, origin: str) -> np.ndarray:
    """A constant's data in its shape; its buffer must hold exactly prod(shape) elements."""
    if any(d <= 0 for d in shape):
        _refuse_invalid(origin, [f"constant {where} has shape {list(shape)}; its dimensions must be positive"])
    want = int(np.prod(shape, dtype=np.int64)) * DTYPE_BYTES[dtype]
    if len(raw) != want:
        _refuse_invalid(origin, [f"constant {where} of shape {list(shape)} ({dtype}) needs {want} bytes, "
                                 f"its buffer holds {len(raw)}"])
    return np.frombuffer(raw, dtype=_NUMPY_TYPES[dtype]).reshape(shape).copy()


def _unknown_axes(t, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The axes the shape signature leaves unknown (-1); the stored size there is the converter's placeholder.
    A signature of another rank says nothing (LiteRT, too, goes by the stored shape)."""
    signature = [int(d) for d in (t.shapeSignature if t.shapeSignature is not None else ())]
    if len(signature) != len(shape):
        return ()
    return tuple(i for i, d in enumerate(signature) if d == -1)


def _build_graph(model, buf: bytes, origin: str) -> Graph:
    """The IR of a model whose references `check_references` accepted."""
    sg = model.subgraphs[0]
    tensors: dict[int, Tensor] = {}
    for tid, t in enumerate(sg.tensors or []):
        dtype = _TENSOR_TYPES.get(t.type, f"type{t.type}").lower()
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        unknown = _unknown_axes(t, shape)
        raw = _buffer_data(model, buf, t.buffer)
        data = None
        if raw is not None and dtype in _NUMPY_TYPES:
            data = _constant(raw, dtype, shape, f"'{_name(t.name)}' (#{tid})", origin)
        q = t.quantization
        quant = None
        if q is not None and q.scale is not None and len(q.scale):
            # An absent or empty zero-point list stays empty: validation refuses it, as LiteRT does.
            zps = q.zeroPoint if q.zeroPoint is not None else []
            quant = Quant(tuple(float(s) for s in q.scale), tuple(int(z) for z in zps), int(q.quantizedDimension))
        tensors[tid] = Tensor(tid, _name(t.name), shape, dtype, quant, data,
                              unknown=unknown if data is None else ())

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

    inputs = tuple(int(x) for x in (sg.inputs if sg.inputs is not None else ()))
    outputs = tuple(int(x) for x in (sg.outputs if sg.outputs is not None else ()))
    input_names = tuple(tensors[t].name for t in inputs)
    output_names = tuple(tensors[t].name for t in outputs)
    if model.signatureDefs:
        # Signature order and names are what users see in Keras; tensor order in the subgraph is not.
        sig = model.signatureDefs[0]
        inputs = tuple(int(m.tensorIndex) for m in sig.inputs or [])
        input_names = tuple(_name(m.name) for m in sig.inputs or [])
        outputs = tuple(int(m.tensorIndex) for m in sig.outputs or [])
        output_names = tuple(_name(m.name) for m in sig.outputs or [])
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
