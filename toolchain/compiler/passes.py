"""Graph -> Graph passes. Each one is a pure function; `optimize` runs them in order."""
from __future__ import annotations

import dataclasses

from toolchain.compiler import folding
from toolchain.compiler.dilation import fuse_space_to_batch
from toolchain.compiler import quant as q
from toolchain.compiler.ir import Graph
from toolchain.compiler.ops import OPS
from toolchain.compiler.ops.base import same_quant, window_geometry
from toolchain.compiler.ops.pad import pad_value, paddings

CLAMPABLE = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "AVERAGE_POOL_2D", "MAX_POOL_2D"}
PAD_FOLDABLE = {"CONV_2D", "DEPTHWISE_CONV_2D"}


def alias_reshapes(g: Graph) -> Graph:
    """Drop RESHAPE-like ops: their output becomes an alias of their input's storage."""
    tensors = dict(g.tensors)
    ops = []
    for op in g.ops:
        if OPS.get(op.kind).aliases_output:
            out = op.outputs[0]
            tensors[out] = dataclasses.replace(tensors[out], alias_of=op.inputs[0])
        else:
            ops.append(op)
    return g.replace(tensors=tensors, ops=tuple(ops))


def _only_consumer(g: Graph, tid: int) -> int | None:
    users = g.consumers(tid)
    if len(users) == 1 and tid not in g.outputs:
        return users[0]
    return None


def fuse_activations(g: Graph) -> Graph:
    """Fold a standalone RELU/RELU6 into its producer's output clamp when the quantization is the same
    (then TFLite's ReLU requantization is the identity and only the clamp remains)."""
    ops = list(g.ops)
    removed = set()
    for i, op in enumerate(ops):
        if op.kind not in ("RELU", "RELU6", "RELU_N1_TO_1"):
            continue
        src = op.inputs[0]
        p = g.producer(src)
        if p is None or ops[p].kind not in CLAMPABLE or _only_consumer(g, src) != i:
            continue
        out = g.tensors[op.outputs[0]]
        if not same_quant(g.tensors[src], out) or out.dtype != "int8":  # the clamps below are int8's
            continue
        producer = ops[p]
        clamp = q.intersect(producer.options.get("clamp", (q.INT8_MIN, q.INT8_MAX)),
                            q.activation_range(op.kind, out.scale, out.zero_point))
        ops[p] = producer.replace(outputs=(op.outputs[0],) + producer.outputs[1:],
                                  options={**producer.options, "clamp": clamp})
        removed.add(i)
    return g.replace(ops=tuple(op for i, op in enumerate(ops) if i not in removed))


def fold_pads(g: Graph) -> Graph:
    """Fold a zero-point PAD on H/W into the following convolution's padding (no copy, no buffer)."""
    ops = list(g.ops)
    removed = set()
    for i, op in enumerate(ops):
        if op.kind not in ("PAD", "PADV2"):
            continue
        pads = paddings(op, g)
        c = _only_consumer(g, op.outputs[0])
        if pads is None or c is None or ops[c].kind not in PAD_FOLDABLE or ops[c].inputs[0] != op.outputs[0]:
            continue
        if pads[0] != (0, 0) or pads[3] != (0, 0) or pad_value(op, g) != g.tensors[op.inputs[0]].zero_point:
            continue
        conv = ops[c]
        w = g.tensors[conv.inputs[1]]
        geo = window_geometry(conv, g, w.shape[1], w.shape[2])
        explicit = (geo["pad"][0] + pads[1][0], geo["pad"][1] + pads[2][0])
        ops[c] = conv.replace(inputs=(op.inputs[0],) + conv.inputs[1:],
                              options={**conv.options, "explicit_pad": explicit})
        removed.add(i)
    return g.replace(ops=tuple(op for i, op in enumerate(ops) if i not in removed))


# A standalone BatchNormalization arrives as MUL then ADD by per-channel constants and stays so (ops/binary.py,
# bit-exact). Folding it into a preceding convolution is not exact in general: LiteRT rounds to int8 three times
# (the convolution's requantization, MUL's, ADD's), one changed multiplier and bias round once, and the two differ
# in the last bit for some accumulators. (Exact would be one per-channel 256-entry table for the MUL + ADD chain.)
PASSES = (alias_reshapes, fuse_activations, fold_pads)
# Run before the ops are checked: they turn a model with Keras's unknown batch size into a static one.
STATIC_PASSES = (folding.static_batch, folding.fold_shapes, fuse_space_to_batch, folding.fold_shapes,
                 folding.drop_dead_shape_ops, folding.require_static)


def make_static(g: Graph) -> Graph:
    for p in STATIC_PASSES:
        g = p(g)
    return g


def optimize(g: Graph) -> Graph:
    for p in PASSES:
        g = p(g)
    return g
