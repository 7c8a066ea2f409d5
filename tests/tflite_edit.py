"""Edit a .tflite's object tree (the flatbuffer schema's `ModelT`) and pack it again.

The reproducers of hostile or careless models (issue: hostile input) and the fuzzer's structured
mutator build their bad models this way from a good one: change a tensor's name, shape, quantization,
an operator's inputs or options, then `pack()`.

    model = unpack(path.read_bytes())
    model.subgraphs[0].tensors[0].name = b"x*/ evil"
    bad = pack(model)
"""
from __future__ import annotations

import flatbuffers
from ai_edge_litert import schema_py_generated as schema


def unpack(buf: bytes) -> "schema.ModelT":
    return schema.ModelT.InitFromPackedBuf(buf, 0)


def pack(model: "schema.ModelT") -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def edit(buf: bytes, change) -> bytes:
    """`change(model)` edits the unpacked model in place; returns the packed result."""
    model = unpack(buf)
    change(model)
    return pack(model)


def subgraph(model: "schema.ModelT"):
    return model.subgraphs[0]


def op_index(model: "schema.ModelT", kind: str, nth: int = 0) -> int:
    """Index in subgraph 0 of the nth operator of builtin `kind` (e.g. "FULLY_CONNECTED")."""
    code = getattr(schema.BuiltinOperator, kind)
    found = [i for i, o in enumerate(subgraph(model).operators)
             if max(model.operatorCodes[o.opcodeIndex].builtinCode,
                    model.operatorCodes[o.opcodeIndex].deprecatedBuiltinCode) == code]
    return found[nth]


def operator(model: "schema.ModelT", kind: str, nth: int = 0):
    return subgraph(model).operators[op_index(model, kind, nth)]


def tensor(model: "schema.ModelT", tid: int):
    return subgraph(model).tensors[tid]
