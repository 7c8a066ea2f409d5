"""Early exits: schedule a multi-output model so each exit runs as soon as its inputs exist, and decide
in the int8 domain (no float) whether to leave there.

An exit's output is an int8 softmax (scale 1/256, zero point -128): its top probability is
(max + 128) / 256, so "leave when the top probability >= p" is "max >= ceil(256 p - 128)".
"""
from __future__ import annotations

import math

import numpy as np

from toolchain.compiler.ir import ExitPoint, Graph
from toolchain.errors import ToolchainError

NEVER = 128  # an int8 threshold no softmax reaches: the no-exit build


def threshold_to_int8(probability: float) -> int:
    """The int8 threshold equivalent to a top-probability threshold (1.0 or more: never exit)."""
    return int(min(max(math.ceil(256 * probability - 128), -128), NEVER))


def _required_ops(g: Graph, tid: int) -> set[int]:
    producers = {t: i for i, op in enumerate(g.ops) for t in op.outputs}
    needed, stack = set(), [g.root(tid)] + [tid]
    while stack:
        t = stack.pop()
        i = producers.get(t)
        if i is None or i in needed:
            continue
        needed.add(i)
        for src in g.ops[i].inputs:
            if src >= 0:
                stack += [src, g.root(src)]
    return needed


def schedule_exits(g: Graph) -> Graph:
    """Order the ops exit by exit (cheapest output first) and record where each exit can be taken.
    The output needing the most ops is the final one; ops no output needs are dropped."""
    if len(g.outputs) < 2:
        return g
    closures = {t: _required_ops(g, t) for t in g.outputs}
    order = sorted(g.outputs, key=lambda t: (len(closures[t]), g.outputs.index(t)))
    for t in order[:-1]:
        out = g.tensors[t]
        if out.dtype != "int8" or out.quant is None or out.zero_point != -128 or abs(out.scale - 1 / 256) > 1e-9:
            name = g.output_names[g.outputs.index(t)]
            raise ToolchainError(f"output '{name}' cannot be an early exit: it is not an int8 softmax "
                                 "(scale 1/256, zero point -128)", "compile without --early-exit")
    emitted: list[int] = []
    points = []
    for t in order:
        emitted += sorted(closures[t] - set(emitted))
        if t != order[-1]:
            points.append(ExitPoint(t, len(emitted)))
    return g.replace(ops=tuple(g.ops[i] for i in emitted), exits=tuple(points))


def reference_exit(plan: dict, outputs: list[np.ndarray], threshold: int) -> int:
    """The exit the generated code takes for these outputs (in plan order) at an int8 threshold."""
    names = [o["name"] for o in plan["outputs"]]
    for k, ex in enumerate(plan.get("exits", [])):
        if int(np.max(outputs[names.index(ex["output"])])) >= threshold:
            return k
    return len(plan.get("exits", []))


def taken_outputs(plan: dict, exit_index: int) -> list[int]:
    """Indices (in plan order) of the outputs valid after leaving at `exit_index`."""
    exits = plan.get("exits", [])
    if exit_index < len(exits):
        return [[o["name"] for o in plan["outputs"]].index(exits[exit_index]["output"])]
    return list(range(len(plan["outputs"])))
