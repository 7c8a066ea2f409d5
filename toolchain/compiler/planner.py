"""Static memory plan: every intermediate tensor gets a fixed offset in one arena.

Greedy by size: the largest buffers are placed first, each at the lowest aligned offset that does not
overlap a buffer alive at the same time. Lifetimes are op indices [first write, last read]. A kernel's
scratch buffer is alive during its own op only; the generated call gets it through its tm_context.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from toolchain.compiler.ir import Graph
from toolchain.compiler.ops import variants

ALIGN = 16


@dataclass(frozen=True)
class Buffer:
    tensor: int  # root tensor id
    name: str
    size: int
    first: int
    last: int
    offset: int = -1


@dataclass(frozen=True)
class Plan:
    arena_size: int
    buffers: dict[int, Buffer]  # root tensor id -> buffer
    input_offsets: dict[int, int]  # graph input tensor id -> offset in the caller's input buffer
    output_offsets: dict[int, int]  # graph output tensor id -> offset in the caller's output buffer
    input_size: int
    output_size: int
    live_peak: int  # the most bytes alive at once: no plan can use less
    scratch: dict[int, Buffer] = field(default_factory=dict)  # op index -> scratch buffer


def _align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


def _io_layout(g: Graph, ids) -> tuple[dict[int, int], int]:
    offsets, pos = {}, 0
    for tid in ids:
        offsets[tid] = pos
        pos = _align(pos + g.tensors[tid].nbytes, 4)
    return offsets, pos


def lifetimes(g: Graph) -> dict[int, tuple[int, int]]:
    """Root tensor id -> (first op writing it, last op reading it) for tensors that need arena space."""
    n = len(g.ops)
    spans: dict[int, list[int]] = {}
    graph_inputs = {g.root(t) for t in g.inputs}
    for i, op in enumerate(g.ops):
        for tid in op.inputs + op.outputs:
            if tid < 0:
                continue
            root = g.root(tid)
            if g.tensors[root].is_const or root in graph_inputs:
                continue
            s = spans.setdefault(root, [i, i])
            s[0], s[1] = min(s[0], i), max(s[1], i)
    for tid in g.outputs:  # outputs are copied to the caller after the last op
        root = g.root(tid)
        if root in spans:
            spans[root][1] = n
    return {t: (a, b) for t, (a, b) in spans.items()}


def place(buffers: list[Buffer]) -> list[Buffer]:
    placed: list[Buffer] = []
    for buf in sorted(buffers, key=lambda b: (-b.size, b.first, b.tensor)):
        overlapping = sorted((p for p in placed if p.first <= buf.last and buf.first <= p.last),
                             key=lambda p: p.offset)
        offset = 0
        for p in overlapping:
            if offset + buf.size <= p.offset:
                break
            offset = max(offset, _align(p.offset + p.size))
        placed.append(Buffer(buf.tensor, buf.name, buf.size, buf.first, buf.last, offset))
    return placed


def scratch_requirements(g: Graph, target: str = "ref") -> dict[int, int]:
    """Op index -> scratch bytes its kernel on kernel path `target` asks for (each op's `scratch_bytes`, the
    C `_get_buffer_size`)."""
    return {i: variants.scratch_bytes(op, g, target) for i, op in enumerate(g.ops)}


def plan_memory(g: Graph, scratch_sizes: dict[int, int] | None = None, target: str = "ref") -> Plan:
    """`scratch_sizes` (op index -> bytes) defaults to what the ops' kernels on path `target` ask for."""
    if scratch_sizes is None:
        scratch_sizes = scratch_requirements(g, target)
    spans = lifetimes(g)
    wanted = [Buffer(t, g.tensors[t].name, g.tensors[t].nbytes, a, b) for t, (a, b) in spans.items()]
    # Scratch buffers get negative ids so they never collide with tensor ids.
    for op_index, size in scratch_sizes.items():
        if size > 0:
            wanted.append(Buffer(-1 - op_index, f"scratch of op {op_index}", size, op_index, op_index))
    placed = place(wanted)
    arena = max((_align(b.offset + b.size) for b in placed), default=0)
    live_peak = max((sum(b.size for b in placed if b.first <= i <= b.last) for i in range(len(g.ops) + 1)), default=0)
    in_offsets, in_size = _io_layout(g, g.inputs)
    out_offsets, out_size = _io_layout(g, g.outputs)
    return Plan(
        arena_size=arena,
        buffers={b.tensor: b for b in placed if b.tensor >= 0},
        input_offsets=in_offsets,
        output_offsets=out_offsets,
        input_size=in_size,
        output_size=out_size,
        live_peak=live_peak,
        scratch={-1 - b.tensor: b for b in placed if b.tensor < 0},
    )


def with_scratch_budgets(g: Graph, plan: Plan) -> Graph:
    """The graph with each op's `scratch_budget` option: the arena bytes not held by a tensor while the op runs
    (its own scratch included, since a variant may replace it). A kernel variant may pick a faster form whose
    larger scratch fits that budget; the driver keeps the new plan only if the arena did not grow (placement may
    still fragment)."""
    ops = []
    for i, op in enumerate(g.ops):
        held = sum(b.size for b in plan.buffers.values() if b.first <= i <= b.last)
        held += sum(b.size for j, b in plan.scratch.items() if j != i and b.first <= i <= b.last)
        ops.append(op.replace(options={**op.options, variants.SCRATCH_BUDGET: max(plan.arena_size - held, 0)}))
    return g.replace(ops=tuple(ops))
