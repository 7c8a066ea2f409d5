"""Static memory plan: every tensor the model computes, its inputs and its outputs get a fixed offset in one arena.

Lifetimes are op indices [first write, last read]; the graph's inputs are written by the caller before op 0 and
its outputs read after the last op. Two buffers alive at the same time do not share bytes, except where an op
allows its output to overlap an input it is finishing (`Overlap`: the output may start `distance` bytes or more
before that input; the kernel, or the row bands the op runs in, never write over input bytes it still reads).
A kernel's scratch buffer is alive during its own op only; the generated call gets it through its tm_context.

Placement: each strategy orders the buffers and puts each at the lowest aligned offset its neighbours in time
allow; several orders are tried (by size, by first use, by lifetime, by size x lifetime, latest first) and, on
small graphs, every order; the smallest arena wins. The lower bound beside it: the most bytes that must be alive
at once.
"""
from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field

from toolchain.compiler.ir import Graph
from toolchain.compiler.ops import variants

ALIGN = 16
EXACT_SEARCH_MAX = 7  # every placement order is tried up to this many buffers (7! = 5040 orders)


@dataclass(frozen=True)
class Buffer:
    tensor: int  # root tensor id
    name: str
    size: int
    first: int
    last: int
    offset: int = -1
    region: str = ""  # the memory region's arena it lies in ("": the main RAM's)


@dataclass(frozen=True)
class Overlap:
    """At op `op`, the buffer of tensor `writer` may share bytes with the buffer of `reader` (whose last reader
    that op is) when it starts `before` bytes or more before it (the op writes its output front to back), or
    `after` bytes or more after it (back to front); None: not that way. The op never writes over input bytes it
    still has to read."""
    op: int
    reader: int
    writer: int
    before: int | None
    after: int | None = None
    same: bool = False  # the writer may also start exactly at the reader's offset


Rules = dict[tuple[int, int], tuple[int | None, int | None, bool]]  # (reader, writer) -> (before, after, same)


@dataclass(frozen=True)
class Plan:
    arena_size: int
    buffers: dict[int, Buffer]  # root tensor id -> buffer (inputs and outputs included)
    input_offsets: dict[int, int]  # graph input tensor id -> offset in the caller's input buffer
    output_offsets: dict[int, int]  # graph output tensor id -> offset in the caller's output buffer
    input_size: int
    output_size: int
    live_peak: int  # lower bound: the most bytes that must be alive at once (overlaps allowed)
    scratch: dict[int, Buffer] = field(default_factory=dict)  # op index -> scratch buffer
    overlaps: tuple[Overlap, ...] = ()  # the overlaps the placement used
    strategy: str = ""  # the placement order that won
    regions: dict[str, int] = field(default_factory=dict)  # memory region -> bytes of the arena there (split)


def align(n: int, a: int = ALIGN) -> int:
    """`n` rounded up to a multiple of `a` (buffer offsets and sizes in the arena)."""
    return (n + a - 1) // a * a


def _io_layout(g: Graph, ids) -> tuple[dict[int, int], int]:
    offsets, pos = {}, 0
    for tid in ids:
        offsets[tid] = pos
        pos = align(pos + g.tensors[tid].nbytes, 4)
    return offsets, pos


def lifetimes(g: Graph) -> dict[int, tuple[int, int]]:
    """Root tensor id -> (first op writing it, last op reading it) for every non-constant tensor. Graph inputs
    are alive from op 0 (the caller writes them before the run), graph outputs until after the last op (n).
    A patch stage reads and writes at its first layer; its intermediate tensors need no buffer."""
    from toolchain.compiler import inplace

    n = len(g.ops)
    spans: dict[int, list[int]] = {g.root(t): [0, 0] for t in g.inputs}
    for i in range(n):
        reads, writes = inplace.planned_io(g, i)
        for tid in reads + writes:
            if tid < 0:
                continue
            root = g.root(tid)
            if g.tensors[root].is_const:
                continue
            s = spans.setdefault(root, [i, i])
            s[0], s[1] = min(s[0], i), max(s[1], i)
    for tid in g.outputs:  # the caller reads outputs after the last op
        spans.setdefault(g.root(tid), [n, n])[1] = n
    return {t: (a, b) for t, (a, b) in spans.items()}


def _forbidden(buf: Buffer, other: Buffer, rules: Rules) -> tuple[int, int, int | None]:
    """The open interval of offsets `buf` may not start at, given `other` (placed, alive at the same time), and
    the one offset inside it that is allowed all the same (an exact overlap), if any."""
    lo, hi = other.offset - buf.size, other.offset + other.size
    exempt = None
    for key, writes in (((other.tensor, buf.tensor), True), ((buf.tensor, other.tensor), False)):
        before, after, same = rules.get(key, (None, None, False))
        if writes:  # buf writes over other
            lo = lo if before is None else max(lo, other.offset - before)
            hi = hi if after is None else min(hi, other.offset + after)
        else:  # other writes over buf
            hi = hi if before is None else min(hi, other.offset + before)
            lo = lo if after is None else max(lo, other.offset - after)
        exempt = other.offset if same else exempt
    return lo, hi, exempt


def place(buffers: list[Buffer], rules: Rules | None = None,
          order=None, limit: int | None = None) -> list[Buffer] | None:
    """Each buffer, in `order` (default: largest first), at the lowest aligned offset allowed by the placed buffers
    alive with it (`rules`: how a reader and its writer may overlap). None once the arena would reach `limit`."""
    rules = rules or {}
    placed: list[Buffer] = []
    for buf in (order if order is not None else sorted(buffers, key=lambda b: (-b.size, b.first, b.tensor))):
        intervals = [_forbidden(buf, p, rules) for p in placed if p.first <= buf.last and buf.first <= p.last]
        candidates = sorted(c for c in {0, *(align(hi) for _, hi, _ in intervals), *(e for _, _, e in intervals)}
                            if c is not None and c >= 0)
        offset = next(c for c in candidates if not any(lo < c < hi and c != e for lo, hi, e in intervals))
        if limit is not None and align(offset + buf.size) >= limit:
            return None
        placed.append(dataclasses.replace(buf, offset=offset))
    return placed


def _arena(placed: list[Buffer]) -> int:
    return max((align(b.offset + b.size) for b in placed), default=0)


STRATEGIES = {
    "size": lambda b: (-b.size, b.first, b.tensor),
    "first use": lambda b: (b.first, -b.size, b.tensor),
    "lifetime": lambda b: (-(b.last - b.first), -b.size, b.tensor),
    "size x lifetime": lambda b: (-b.size * (b.last - b.first + 1), b.first, b.tensor),
    # later tensors first: an output placed before the input it overlaps leaves that input room `before` it
    "last use": lambda b: (-b.last, -b.size, b.tensor),
    "last use, size": lambda b: (-b.size, -b.last, b.tensor),
}


def best_placement(buffers: list[Buffer], rules: Rules) -> tuple[list[Buffer], str]:
    """The smallest arena over the strategies' orders and, with at most EXACT_SEARCH_MAX buffers, every order."""
    best, name = None, ""
    for label, key in STRATEGIES.items():
        placed = place(buffers, rules, sorted(buffers, key=key))
        if best is None or _arena(placed) < _arena(best):
            best, name = placed, label
    if 1 < len(buffers) <= EXACT_SEARCH_MAX:
        for order in itertools.permutations(sorted(buffers, key=STRATEGIES["size"])):
            placed = place(buffers, rules, order, limit=_arena(best))
            if placed is not None and _arena(placed) < _arena(best):
                best, name = placed, "exhaustive"
    return best or [], name


def lower_bound(buffers: list[Buffer], overlaps: tuple[Overlap, ...], steps: int) -> int:
    """The most bytes alive at one op, less what each allowed overlap can save (a reader and its writer need
    max(writer, before + reader) or max(reader, after + writer) bytes together)."""
    bound = 0
    by_id = {b.tensor: b for b in buffers}
    for i in range(steps + 1):
        live = sum(b.size for b in buffers if b.first <= i <= b.last)
        for o in overlaps:
            if o.op == i:
                x, y = by_id[o.reader].size, by_id[o.writer].size
                need = min(max(y, o.before + x) if o.before is not None else x + y,
                           max(x, o.after + y) if o.after is not None else x + y,
                           max(x, y) if o.same else x + y)
                live -= max(x + y - need, 0)
        bound = max(bound, live)
    return bound


def scratch_requirements(g: Graph, target: str = "ref") -> dict[int, int]:
    """Op index -> scratch bytes its kernel on kernel path `target` asks for (each op's `scratch_bytes`, the
    C `_get_buffer_size`; a layer run in row bands adds its band buffer)."""
    from toolchain.compiler import inplace

    return {i: inplace.scratch_bytes(g, i, target) for i in range(len(g.ops))}


def overlap_rules(g: Graph, spans: dict[int, tuple[int, int]], target: str) -> tuple[Overlap, ...]:
    """The overlaps the ops allow (inplace.overlaps) where the input really dies at the op and the output is
    born there: a graph output, or an input another op still reads, is never written over."""
    from toolchain.compiler import inplace

    outputs = {g.root(t) for t in g.outputs}
    found = []
    for i in range(len(g.ops)):
        reads, writes = inplace.planned_io(g, i)
        for index, rule in inplace.overlaps(g, i, target):
            x, y = g.root(reads[index]), g.root(writes[0])
            if x not in spans:  # a constant (a folded FILL of zeros, say) lives in flash: never written over
                continue
            if x != y and x not in outputs and spans[x][1] == i and spans[y][0] == i:
                found.append(Overlap(i, x, y, rule.before, rule.after, rule.same))
    return tuple(found)


def plan_memory(g: Graph, scratch_sizes: dict[int, int] | None = None, target: str = "ref",
                overlaps: bool = True) -> Plan:
    """`scratch_sizes` (op index -> bytes) defaults to what the ops' kernels on path `target` ask for.
    `overlaps`: use the overlaps the path's kernels allow (False: every live buffer apart)."""
    if scratch_sizes is None:
        scratch_sizes = scratch_requirements(g, target)
    spans = lifetimes(g)
    wanted = [Buffer(t, g.tensors[t].name, g.tensors[t].nbytes, a, b) for t, (a, b) in spans.items()]
    # Scratch buffers get negative ids so they never collide with tensor ids.
    for op_index, size in scratch_sizes.items():
        if size > 0:
            wanted.append(Buffer(-1 - op_index, f"scratch of op {op_index}", size, op_index, op_index))
    rules = overlap_rules(g, spans, target) if overlaps else ()
    placed, strategy = best_placement(wanted, {(o.reader, o.writer): (o.before, o.after, o.same) for o in rules})
    offsets = {b.tensor: b.offset for b in placed}
    used = tuple(o for o in rules if offsets[o.reader] < offsets[o.writer] + g.tensors[o.writer].nbytes
                 and offsets[o.writer] < offsets[o.reader] + g.tensors[o.reader].nbytes)
    in_offsets, in_size = _io_layout(g, g.inputs)
    out_offsets, out_size = _io_layout(g, g.outputs)
    return Plan(
        arena_size=_arena(placed),
        buffers={b.tensor: b for b in placed if b.tensor >= 0},
        input_offsets=in_offsets,
        output_offsets=out_offsets,
        input_size=in_size,
        output_size=out_size,
        live_peak=lower_bound(wanted, rules, len(g.ops)),
        scratch={-1 - b.tensor: b for b in placed if b.tensor < 0},
        overlaps=used,
        strategy=strategy,
    )


def with_scratch_budgets(g: Graph, plan: Plan) -> Graph:
    """The graph with each op's `scratch_budget` option: the arena bytes not held by a tensor while the op runs
    (its own scratch included, since a variant may replace it). A kernel variant may pick a faster form whose
    larger scratch fits that budget; the driver keeps the new plan only if the arena did not grow (placement may
    still fragment)."""
    ops = []
    for i, op in enumerate(g.ops):
        held = _covered([b for b in plan.buffers.values() if b.first <= i <= b.last]
                        + [b for j, b in plan.scratch.items() if j != i and b.first <= i <= b.last])
        ops.append(op.replace(options={**op.options, variants.SCRATCH_BUDGET: max(plan.arena_size - held, 0)}))
    return g.replace(ops=tuple(ops))


def _covered(buffers: list[Buffer]) -> int:
    """Bytes of the arena covered by these buffers (overlapping ones counted once)."""
    total, end = 0, 0
    for b in sorted(buffers, key=lambda b: b.offset):
        start, stop = max(b.offset, end), b.offset + b.size
        total += max(stop - start, 0)
        end = max(end, stop)
    return total


def split_regions(plan: Plan, regions: list[tuple[str, int]]) -> Plan:
    """The plan spread over memory regions, fastest first ((name, bytes free for the arena); the first region's
    arena is the main one, `tm_arena`, when it is named "ram"): everything stays in the first region when it fits;
    else the largest buffers move to the next region, one by one, until each region's part fits (the small,
    short-lived tensors the layers touch most stay in the fast memory). Refused with the numbers when no split
    fits."""
    from toolchain.errors import ToolchainError

    names = [("" if name == "ram" else name) for name, _ in regions]
    caps = [cap for _, cap in regions]
    wanted = list(plan.buffers.values()) + [dataclasses.replace(b, tensor=-1 - i) for i, b in plan.scratch.items()]
    rules = {(o.reader, o.writer): (o.before, o.after, o.same) for o in plan.overlaps}
    order = sorted(wanted, key=lambda b: (-b.size, b.tensor))
    home = {b.tensor: 0 for b in wanted}
    while True:
        parts = [best_placement([b for b in wanted if home[b.tensor] == k],
                                {key: r for key, r in rules.items() if home.get(key[0]) == home.get(key[1]) == k})
                 for k in range(len(regions))]
        sizes = [_arena(placed) for placed, _ in parts]
        over = next((k for k in range(len(regions)) if sizes[k] > caps[k]), None)
        if over is None:
            break
        movable = [b for b in order if home[b.tensor] == over]
        if over == len(regions) - 1 or not movable:
            need = ", ".join(f"{name or 'ram'} {size:,} of {cap:,} B" for name, size, cap in zip(names, sizes, caps))
            raise ToolchainError(f"the model's arena ({plan.arena_size:,} B) fits no split over the board's RAM "
                                 f"regions (needed vs available: {need})",
                                 "choose a board with more RAM, or shrink the model (prune, smaller input)")
        home[movable[0].tensor] = over + 1
    placed = {b.tensor: dataclasses.replace(b, region=names[home[b.tensor]])
              for (part, _), k in zip(parts, range(len(regions))) for b in part}
    return dataclasses.replace(
        plan, arena_size=sum(sizes), buffers={t: b for t, b in placed.items() if t >= 0},
        scratch={-1 - t: b for t, b in placed.items() if t < 0},
        overlaps=tuple(o for o in plan.overlaps if placed[o.reader].region == placed[o.writer].region),
        regions={names[k] or "ram": sizes[k] for k in range(len(regions)) if sizes[k] or k == 0})
