"""Early exits: schedule a multi-output model so each exit runs as soon as its inputs exist, and decide
in the int8 domain (no float) whether to leave there.

An exit's output is an int8 softmax (scale 1/256, zero point -128): its top probability is
(max + 128) / 256, so "leave when the top probability >= p" is "max >= ceil(256 p - 128)".
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from toolchain.compiler.ir import ExitPoint, Graph
from toolchain.compiler.model_plan import ModelPlan
from toolchain.errors import ToolchainError

NEVER = 128  # an int8 threshold no softmax reaches: the no-exit build


def threshold_to_int8(probability: float) -> int:
    """The int8 threshold equivalent to a top-probability threshold (1.0 or more: never exit)."""
    return int(min(max(math.ceil(256 * probability - 128), -128), NEVER))


@dataclass(frozen=True)
class ExitThreshold:
    """When to leave at an exit: its top probability >= `probability`, i.e. its int8 maximum >= `int8`.
    `probability` is None when only the int8 value was given."""
    probability: float | None
    int8: int

    @classmethod
    def of(cls, probability: float) -> ExitThreshold:
        return cls(float(probability), threshold_to_int8(probability))

    @classmethod
    def from_int8(cls, value: int) -> ExitThreshold:
        value = int(value)
        if not -128 <= value <= NEVER:
            raise ToolchainError(f"an int8 exit threshold must be within [-128, {NEVER}], got {value}")
        return cls(None, value)

    @classmethod
    def never(cls) -> ExitThreshold:
        return cls(1.0, NEVER)

    @property
    def exits(self) -> bool:
        """False for the no-exit threshold, which no int8 softmax reaches."""
        return self.int8 < NEVER

    def to_dict(self) -> dict:
        return {"probability": self.probability, "int8": self.int8}

    @classmethod
    def from_dict(cls, d: dict) -> ExitThreshold:
        p = d.get("probability")
        return cls(None if p is None else float(p), cls.from_int8(d["int8"]).int8)


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


def reference_exit(plan: ModelPlan, outputs: list[np.ndarray], threshold: int) -> int:
    """The exit the generated code takes for these outputs (in plan order) at an int8 threshold."""
    names = plan.output_names
    for k, ex in enumerate(plan.exits):
        if int(np.max(outputs[names.index(ex.output)])) >= threshold:
            return k
    return len(plan.exits)


def taken_outputs(plan: ModelPlan, exit_index: int) -> list[int]:
    """Indices (in plan order) of the outputs valid after leaving at `exit_index`."""
    if exit_index < len(plan.exits):
        return [plan.output_names.index(plan.exits[exit_index].output)]
    return list(range(len(plan.outputs)))
