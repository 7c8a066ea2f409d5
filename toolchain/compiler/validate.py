"""Structural validation of an untrusted .tflite, done once in the frontend.

After `check_references` (on the flatbuffer's object tree) and `check_graph` (on the IR) pass, later stages
may index tensors and op inputs without guarding: every id exists, every op has the inputs its kind needs,
ops run in order and write each tensor once, shapes are static and positive, constants hold exactly their
bytes, quantization parameters are finite, normal and in range, and window options are positive.
What each op then requires of its shapes and dtypes is the op's own `check`.
"""
from __future__ import annotations

import math

import numpy as np

from toolchain.compiler.ir import DTYPE_BYTES, Graph, Op, Tensor
from toolchain.compiler.ops import OPS

MAX_RANK = 4  # activations are laid out as NHWC
# Kernels index and size tensors in int32 (tm_dims_size, row offsets) and the arena is one C array: any tensor, and
# all activations together, must stay below 2 GiB, far above any microcontroller's RAM.
MAX_BYTES = 2**31 - 1
_SMALLEST_NORMAL_F32 = float(np.finfo(np.float32).tiny)
_INTEGER_RANGES = {name: (int(np.iinfo(name).min), int(np.iinfo(name).max))
                   for name in ("int8", "uint8", "int16", "int32", "int64")}
# Options that size or step a window: 0 or negative ones divide by zero or never advance.
_POSITIVE_OPTIONS = ("strideH", "strideW", "dilationHFactor", "dilationWFactor", "filterHeight", "filterWidth")
_PADDINGS = ("SAME", "VALID")


def _options_types() -> dict[int, tuple[str, int, str]]:
    """Builtin operator code -> (its name, the BuiltinOptions union member LiteRT reads for it, that member's name),
    for the operators that take options: by name (CONV_2D -> Conv2DOptions), else as schema.fbs pairs them."""
    from ai_edge_litert import schema_py_generated as schema

    def members(enum) -> dict[str, int]:
        return {k: v for k, v in vars(enum).items() if not k.startswith("_")}

    options = members(schema.BuiltinOptions)
    by_name = {name[:-len("Options")].lower(): name for name in options if name.endswith("Options")}
    shared = {"Pool2DOptions": ("AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D"),
              "ReducerOptions": ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "REDUCE_ANY", "REDUCE_ALL"),
              "MaximumMinimumOptions": ("MAXIMUM", "MINIMUM"), "L2NormOptions": ("L2_NORMALIZATION",),
              "SequenceRNNOptions": ("UNIDIRECTIONAL_SEQUENCE_RNN",),
              "RandomOptions": ("RANDOM_UNIFORM", "RANDOM_STANDARD_NORMAL", "MULTINOMIAL")}
    pairs = {kind: name for name, kinds in shared.items() for kind in kinds}
    found = {}
    for kind, code in members(schema.BuiltinOperator).items():
        name = pairs.get(kind) or by_name.get(kind.replace("_", "").lower())
        if name in options:
            found[code] = (kind, options[name], name)
    return found


_OPTIONS_TYPES = _options_types()
_OPTIONS_NAMES = {code: name for _, code, name in _OPTIONS_TYPES.values()}


def check_references(model) -> list[str]:
    """Every index in the single subgraph of the object tree (`schema.ModelT`) points at something that
    exists; the frontend builds the IR only from a tree that passes."""
    sg = model.subgraphs[0]
    count = len(sg.tensors or [])
    problems = []

    def refer(where: str, ids, optional: bool = False) -> None:
        for k, tid in enumerate(ids if ids is not None else ()):
            if not (0 <= tid < count or (optional and tid == -1)):
                problems.append(f"{where} {k} is tensor {tid}, but the graph has {count} tensor(s)")

    opcodes = len(model.operatorCodes or [])
    for i, o in enumerate(sg.operators or []):
        if not 0 <= o.opcodeIndex < opcodes:
            problems.append(f"op #{i} has operator code {o.opcodeIndex}, but the model defines {opcodes}")
        refer(f"op #{i} input", o.inputs, optional=True)  # which inputs may be omitted is checked per kind
        problems += _check_options_type(model, i, o)
        refer(f"op #{i} output", o.outputs)
    refer("graph input", sg.inputs)
    refer("graph output", sg.outputs)
    for sig in (model.signatureDefs or [])[:1]:
        for role, entries, graph_ids in (("input", sig.inputs, sg.inputs), ("output", sig.outputs, sg.outputs)):
            ids = [int(m.tensorIndex) for m in entries or []]
            graph_ids = [int(t) for t in (graph_ids if graph_ids is not None else [])]
            refer(f"signature {role}", ids)
            # LiteRT keeps only the subgraph's own inputs and outputs: a signature naming others reads garbage.
            if sorted(ids) != sorted(graph_ids):
                problems.append(f"the signature's {role}s (tensors {ids}) are not the graph's (tensors {graph_ids})")
    buffers = len(model.buffers or [])
    for tid, t in enumerate(sg.tensors or []):
        if not 0 <= t.buffer < max(buffers, 1):
            problems.append(f"tensor #{tid} uses buffer {t.buffer}, but the model has {buffers} buffer(s)")
    return problems


def _check_options_type(model, i: int, o) -> list[str]:
    """LiteRT reads an op's options as its kind's own table (a union of another type reads as absent: defaults);
    options of another op's type would be read by us and not by LiteRT."""
    if not 0 <= o.opcodeIndex < len(model.operatorCodes or []) or not o.builtinOptionsType:
        return []
    code = model.operatorCodes[o.opcodeIndex]
    want = _OPTIONS_TYPES.get(max(code.builtinCode, code.deprecatedBuiltinCode))
    if want is None or o.builtinOptionsType == want[1]:
        return []
    got = _OPTIONS_NAMES.get(o.builtinOptionsType, f"union member {o.builtinOptionsType}")
    return [f"op #{i} {want[0]} carries {got}, but LiteRT reads {want[2]} for it (and defaults without them)"]


def check_graph(g: Graph) -> list[str]:
    """Problems with the graph's structure, tensors, quantization and options, each naming where it is."""
    problems = _check_io(g)
    for tid, t in sorted(g.tensors.items()):  # all of them: LiteRT refuses a model with any bad tensor
        problems += [f"tensor '{t.name}' (#{tid}): {p}" for p in _check_tensor(t)]
    for op in g.ops:
        problems += [f"{op.location}: {p}" for p in _check_arity(op) + _check_options(op)]
    return problems + _check_order(g) + check_sizes(g)


def check_sizes(g: Graph) -> list[str]:
    """Tensors whose byte counts, alone or all activations together, overflow the kernels' int32 arithmetic."""
    problems = [f"tensor '{t.name}' (#{tid}): shape {list(t.shape)} holds {t.nbytes} bytes, more than {MAX_BYTES} "
                "(int32 sizes in the kernels)" for tid, t in sorted(g.tensors.items())
                if t.dtype in DTYPE_BYTES and t.nbytes > MAX_BYTES]
    total = sum(t.nbytes for t in g.tensors.values() if not t.is_const and t.dtype in DTYPE_BYTES)
    if not problems and total > MAX_BYTES:
        problems.append(f"the activations take {total} bytes in all, more than {MAX_BYTES} (one int32-sized arena)")
    return problems


def _check_tensor(t: Tensor) -> list[str]:
    if t.dtype not in DTYPE_BYTES:
        return [f"type {t.dtype.upper()} is not supported"]
    problems = []
    if any(d <= 0 for d in t.shape):
        problems.append(f"shape {list(t.shape)} is not static and positive (dynamic or empty dimension); "
                        "export with a fixed batch size of 1")
    elif len(t.shape) > MAX_RANK and not t.is_const:
        problems.append(f"rank {len(t.shape)} (shape {list(t.shape)}); activations may have at most {MAX_RANK} "
                        "dimensions (NHWC)")
    if t.quant is not None:
        problems += _check_quant(t)
    return problems


def _check_quant(t: Tensor) -> list[str]:
    q = t.quant
    assert q is not None
    problems = []
    bad = [s for s in q.scale if not (math.isfinite(s) and s >= _SMALLEST_NORMAL_F32)]
    if bad:
        problems.append(f"scale {bad[0]!r} is not a positive, finite, normal float32 (>= {_SMALLEST_NORMAL_F32:.3g})")
    if len(q.zero_point) != len(q.scale):
        problems.append(f"{len(q.scale)} scale(s) but {len(q.zero_point)} zero point(s); "
                        "quantization needs one zero point per scale")
    low, high = _INTEGER_RANGES.get(t.dtype, (-math.inf, math.inf))
    outside = [z for z in q.zero_point if not low <= z <= high]
    if outside:
        problems.append(f"zero point {outside[0]} is outside the {t.dtype} range {low}..{high}")
    if q.per_channel:
        if not 0 <= q.axis < len(t.shape):
            problems.append(f"per-channel quantization along axis {q.axis} of a rank-{len(t.shape)} tensor")
        elif len(q.scale) != t.shape[q.axis]:
            problems.append(f"{len(q.scale)} per-channel scales for {t.shape[q.axis]} channels on axis {q.axis}")
    return problems


def _check_io(g: Graph) -> list[str]:
    problems = []
    for role, ids in (("input", g.inputs), ("output", g.outputs)):
        if not ids:
            problems.append(f"the graph has no {role}; a model needs at least one input and one output")
        if len(set(ids)) != len(ids):
            problems.append(f"a tensor is listed twice as a graph {role} ({list(ids)})")
    problems += [f"graph input '{g.tensors[t].name}' is a constant" for t in g.inputs if g.tensors[t].is_const]
    return problems


def _check_arity(op: Op) -> list[str]:
    """Ops we have no kernel for are reported by the op checks; only their ids were checked."""
    opdef = OPS.get(op.kind)
    if opdef is None:
        return []
    problems = []
    low, high = opdef.num_inputs
    if not low <= len(op.inputs) <= (high if high is not None else len(op.inputs)):
        want = f"{low}" if low == high else f"{low} to {high}" if high is not None else f"at least {low}"
        problems.append(f"has {len(op.inputs)} input(s), {op.kind} takes {want}")
    omitted = [k for k, t in enumerate(op.inputs) if t < 0 and k not in opdef.optional_inputs]
    if omitted:
        problems.append(f"required input {omitted[0]} is omitted (tensor -1)")
    if opdef.num_outputs is None and not op.outputs:
        problems.append(f"has no output, {op.kind} writes at least one")
    elif opdef.num_outputs is not None and len(op.outputs) != opdef.num_outputs:
        problems.append(f"has {len(op.outputs)} output(s), {op.kind} writes {opdef.num_outputs}")
    return problems


def _check_options(op: Op) -> list[str]:
    o = op.options
    problems = [f"option {key} is {o[key]}; strides, dilations and window sizes must be positive"
                for key in _POSITIVE_OPTIONS if key in o and not o[key] > 0]
    if "padding" in o and o["padding"] not in _PADDINGS:
        problems.append(f"padding {o['padding']} is not SAME or VALID")
    if "beta" in o and not (math.isfinite(o["beta"]) and o["beta"] > 0):
        problems.append(f"softmax beta {o['beta']} must be finite and positive")
    return problems


def _check_order(g: Graph) -> list[str]:
    """Ops run in the order stored (as LiteRT runs them): each reads only tensors already available and
    writes tensors no one else writes."""
    writer = {t: "a graph input" for t in g.inputs}
    problems = []
    for op in g.ops:
        for tid in op.inputs:
            t = g.tensors[tid] if tid >= 0 else None
            if t is None or t.is_const or tid in writer:
                continue
            if tid in op.outputs:
                problems.append(f"{op.location}: reads its own output '{t.name}' (a cycle)")
            else:
                problems.append(f"{op.location}: reads '{t.name}' (#{tid}) before any op writes it; operators "
                                "must be stored in execution order and every activation must be computed")
        for tid in op.outputs:
            t = g.tensors[tid]
            if t.is_const:
                problems.append(f"{op.location}: writes the constant '{t.name}'")
            elif tid in writer:
                problems.append(f"{op.location}: writes '{t.name}' (#{tid}), already written by {writer[tid]}")
            writer.setdefault(tid, op.location)
    for tid in g.outputs:
        if tid not in writer or tid in g.inputs:
            problems.append(f"graph output '{g.tensors[tid].name}' is not computed by any operator")
    return problems
