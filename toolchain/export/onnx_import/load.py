"""Reading an ONNX model safely and rewriting the graph into the plain form the converter expects.

PyTorch's exporters write the same network in several shapes: the dynamo exporter (opset 18+) keeps
weights in external data files, passes initializers through Identity nodes and leaves BatchNormalization
as a node after each Conv. `prepare` evaluates what is constant (Identity and Transpose of constants),
folds a BatchNormalization into the Conv before it and a MatMul + constant Add into one Gemm, so the
converter sees one form.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolchain.errors import ToolchainError


def attributes(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


# ---- external data -----------------------------------------------------------------------------------

def _tensors(graph):
    """Every TensorProto of `graph`: initializers and node attributes, subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                yield from _tensors(sub)


def check_external_data(model, model_path: Path) -> None:
    """Every external data file must be a relative path resolving (symlinks followed) inside the model's
    directory: a model is untrusted, and its locations must not make us read other files."""
    from onnx import TensorProto

    base = Path(os.path.realpath(model_path.parent))
    for tensor in _tensors(model.graph):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        if not _inside(base, location):
            raise ToolchainError(f"ONNX tensor {tensor.name!r}: external data location {location!r} is not a file "
                                 f"inside the model's directory {base}; refusing to read it",
                                 "keep the model's .data files next to it, named relative to it")


def _inside(base: Path, location: str) -> bool:
    """Whether `location` names a regular file in `base` (not a FIFO or a device, which never end), relative,
    without `..` or backslashes, symlinks followed; a name the OS refuses (a NUL byte, too long) is not one."""
    if not location or os.path.isabs(location) or ".." in Path(location).parts or "\\" in location:
        return False
    try:
        target = Path(os.path.realpath(base / location))
        return target.is_relative_to(base) and target.is_file()
    except (ValueError, OSError):
        return False


def load_onnx(path: Path | str):
    """An onnx.ModelProto with its external data (checked by `check_external_data`) read in."""
    import onnx
    from onnx.external_data_helper import load_external_data_for_model

    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError, OSError...
        raise ToolchainError(f"cannot read ONNX model {path}: {exc}") from exc
    check_external_data(model, path)
    try:
        load_external_data_for_model(model, str(path.parent))
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises its own ValidationError, OSError...
        raise ToolchainError(f"cannot read ONNX model {path}: {exc}") from exc
    return model


# ---- graph rewriting ---------------------------------------------------------------------------------

@dataclass
class Prepared:
    nodes: list
    constants: dict[str, np.ndarray]


# Folding never grows a constant except Concat, which may list one input thousands of times: past this many
# elements (a 64 MB float32 tensor, more than any model we convert holds) it is refused, not allocated.
MAX_FOLDED_ELEMENTS = 1 << 24


def _node_name(node) -> str:
    return f"{node.op_type} {node.name!r}" if node.name else node.op_type


def _checked_constant_value(node, constants: dict, shapes: set[str]) -> np.ndarray | None:
    """`_constant_value`, with what NumPy refuses (a bad perm or axis, too many dims) and absurd sizes refused in
    one line naming the node."""
    if node.op_type == "Concat" and node.input and all(i in constants for i in node.input):
        total = sum(constants[i].size for i in node.input)
        if total > MAX_FOLDED_ELEMENTS:
            raise ToolchainError(f"ONNX node {_node_name(node)}: concatenating constants into {total} elements "
                                 f"(more than {MAX_FOLDED_ELEMENTS})", "export the model with its real sizes")
    try:
        return _constant_value(node, constants, shapes)
    except (ValueError, IndexError, TypeError) as exc:  # NumPy's AxisError is both
        raise ToolchainError(f"ONNX node {_node_name(node)}: cannot evaluate it on its constant inputs: {exc}",
                             "check the node's attributes (perm, axes) against its inputs' shapes") from exc


def _constant_value(node, constants: dict, shapes: set[str]) -> np.ndarray | None:
    """The value of a node computing a constant from constants, else None. `shapes` are the outputs of
    Shape nodes: element 0 of one (x.size(0), the batch) becomes 0, which Reshape reads as "keep dim 0",
    so `x.view(x.size(0), -1)` exported with a dynamic batch folds to Reshape(x, [0, -1])."""
    from onnx import numpy_helper

    if node.op_type == "Constant":
        attrs = attributes(node)
        if "value" in attrs:
            return numpy_helper.to_array(attrs["value"])
        for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                           ("value_ints", np.int64)):
            if key in attrs:
                return np.asarray(attrs[key], dtype)
        return None
    if node.op_type == "Identity" and node.input[0] in constants:
        return constants[node.input[0]]
    if node.op_type == "Transpose" and node.input[0] in constants:
        perm = attributes(node).get("perm")
        return np.transpose(constants[node.input[0]], perm)
    if node.op_type == "Gather" and node.input[0] in shapes and node.input[1] in constants:
        index = constants[node.input[1]]
        return np.zeros_like(index, np.int64) if not index.any() and not attributes(node).get("axis", 0) else None
    if node.op_type == "Unsqueeze" and node.input[0] in constants:
        axes = attributes(node).get("axes", constants.get(node.input[1]) if len(node.input) > 1 else None)
        return None if axes is None else np.expand_dims(constants[node.input[0]], tuple(int(a) for a in axes))
    if node.op_type == "Concat" and node.input and all(i in constants for i in node.input):
        return np.concatenate([constants[i] for i in node.input], axis=attributes(node).get("axis", 0))
    return None


def _consumers(nodes: list) -> dict[str, list]:
    users: dict[str, list] = {}
    for n in nodes:
        for i in n.input:
            users.setdefault(i, []).append(n)
    return users


def _batchnorm_after(conv, users: dict, constants: dict, outputs: set[str]):
    """The inference BatchNormalization that alone reads `conv`'s output, when every parameter of both is a
    constant of the right size; else None."""
    after = users.get(conv.output[0], [])
    if conv.op_type != "Conv" or conv.output[0] in outputs or len(after) != 1 or len(conv.input) < 2:
        return None
    bn, w = after[0], constants.get(conv.input[1])
    bias_name = conv.input[2] if len(conv.input) > 2 and conv.input[2] else None
    if (bn.op_type != "BatchNormalization" or bn.input[0] != conv.output[0] or w is None or w.ndim < 1
            or (bias_name is not None and bias_name not in constants) or attributes(bn).get("training_mode", 0)
            or not all(i in constants for i in bn.input[1:5])):
        return None
    sizes = {constants[i].size for i in bn.input[1:5]} | ({constants[bias_name].size} if bias_name else set())
    return bn if sizes == {w.shape[0]} else None


def _fold_batchnorm(nodes: list, constants: dict, outputs: set[str]) -> list:
    """Conv -> BatchNormalization (inference) -> one Conv with scaled weights and a shifted bias."""
    import onnx

    users = _consumers(nodes)
    folded, skip = [], set()
    for n in nodes:
        if id(n) in skip:
            continue
        bn = _batchnorm_after(n, users, constants, outputs)
        if bn is None:
            folded.append(n)
            continue
        w = constants[n.input[1]]
        gamma, beta, mean, var = (constants[i].astype(np.float64).reshape(-1) for i in bn.input[1:5])
        scale = gamma / np.sqrt(var + float(attributes(bn).get("epsilon", 1e-5)))
        bias = constants[n.input[2]].reshape(-1) if len(n.input) > 2 and n.input[2] else np.zeros(w.shape[0])
        weight_name, bias_name = f"{n.output[0]}__bn_weight", f"{n.output[0]}__bn_bias"
        constants[weight_name] = (w * scale.reshape(-1, *([1] * (w.ndim - 1)))).astype(np.float32)
        constants[bias_name] = ((bias - mean) * scale + beta).astype(np.float32)
        conv = onnx.helper.make_node("Conv", [n.input[0], weight_name, bias_name], [bn.output[0]],
                                     name=n.name or bn.name)
        conv.attribute.extend(n.attribute)
        folded.append(conv)
        skip.add(id(bn))
    return folded


def _fuse_matmul_bias(nodes: list, constants: dict) -> list:
    """MatMul followed by an Add of a constant vector -> one Gemm (a Dense with bias)."""
    import onnx

    users = _consumers(nodes)
    fused, skip = [], set()
    for n in nodes:
        if id(n) in skip:
            continue
        after = users.get(n.output[0], []) if n.op_type == "MatMul" else []
        if len(after) == 1 and after[0].op_type == "Add":
            add = after[0]
            other = add.input[1] if add.input[0] == n.output[0] else add.input[0]
            bias = constants.get(other)
            if bias is not None and bias.ndim <= 2 and bias.size == bias.shape[-1]:
                fused.append(onnx.helper.make_node("Gemm", [n.input[0], n.input[1], other], list(add.output),
                                                   name=add.name or n.name))
                skip.add(id(add))
                continue
        fused.append(n)
    return fused


def prepare(graph) -> Prepared:
    """The graph's nodes with constants evaluated and the folds above applied (graph order kept)."""
    from onnx import numpy_helper

    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    nodes, shapes = [], set()
    for node in graph.node:
        value = _checked_constant_value(node, constants, shapes)
        if value is not None and node.output[0] not in outputs:
            constants[node.output[0]] = value
            continue
        if node.op_type == "Shape" and not attributes(node).get("start", 0) and "end" not in attributes(node):
            shapes.add(node.output[0])
        nodes.append(node)
    read = {i for n in nodes for i in n.input} | outputs
    nodes = [n for n in nodes if n.op_type != "Shape" or n.output[0] in read]  # the ones folded away above
    nodes = _fold_batchnorm(nodes, constants, outputs)
    return Prepared(_fuse_matmul_bias(nodes, constants), constants)
