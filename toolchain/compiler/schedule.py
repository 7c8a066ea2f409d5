"""Operator order for memory: a graph with branches (skip connections, several heads) may run its ops in any
topological order, and the order decides which tensors are alive together. The model's own order is one
candidate; a greedy list schedule (at each step, of the ops whose inputs exist, the one that adds the fewest
bytes net of the inputs it frees; ties: the model's order) is the other. The driver plans both and keeps the
smaller arena (the model's order on a tie). Models with early exits keep the order `schedule_exits` chose.
"""
from __future__ import annotations

from toolchain.compiler.ir import Graph


def _activation_inputs(g: Graph, i: int) -> set[int]:
    return {g.root(t) for t in g.ops[i].inputs if t >= 0 and not g.tensors[g.root(t)].is_const}


def greedy_order(g: Graph) -> list[int]:
    """Op indices in the greedy memory order (a topological order of the graph)."""
    produced_by = {g.root(t): i for i, op in enumerate(g.ops) for t in op.outputs}
    needs = {i: {produced_by[t] for t in _activation_inputs(g, i) if t in produced_by} for i in range(len(g.ops))}
    readers: dict[int, int] = {}
    for i in range(len(g.ops)):
        for t in _activation_inputs(g, i):
            readers[t] = readers.get(t, 0) + 1
    keep = {g.root(t) for t in g.outputs}
    done: set[int] = set()
    order = []
    while len(order) < len(g.ops):
        ready = [i for i in range(len(g.ops)) if i not in done and needs[i] <= done]

        def growth(i: int) -> int:
            made = sum(g.tensors[g.root(t)].nbytes for t in g.ops[i].outputs)
            freed = sum(g.tensors[t].nbytes for t in _activation_inputs(g, i) if readers[t] == 1 and t not in keep)
            return made - freed

        i = min(ready, key=lambda i: (growth(i), i))
        order.append(i)
        done.add(i)
        for t in _activation_inputs(g, i):
            readers[t] -= 1
    return order


def candidate_orders(g: Graph) -> list[Graph]:
    """The graph in the model's order, and in the greedy memory order when that differs (no early exits)."""
    if g.exits:
        return [g]
    order = greedy_order(g)
    if order == list(range(len(g.ops))):
        return [g]
    return [g, g.replace(ops=tuple(g.ops[i] for i in order))]
