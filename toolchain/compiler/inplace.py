"""Where a layer may write over the input it is finishing: element-wise kernels in place, row bands, patch stages.

Element-wise kernels (ADD, SUB, MUL, MAXIMUM, MINIMUM, SQUARED_DIFFERENCE, requantize, ReLU, (de)quantize) read
element i before they write element i, in increasing order, on every kernel path: their output may start where
their input starts (a larger output element: as far before it as the output outgrows the input). A broadcasting
binary kernel reads only an input of the output's size that way; the input it broadcasts may not overlap.

Windowed layers (CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, MAX_POOL_2D) do not read that way, so the compiler
may run them in row bands instead: the layer's kernel is called once per band of output rows, on just the input
rows that band reads (its own top padding), into a band buffer in the layer's scratch, and the band is then copied
to its place in the output. A band's copy only lands on input rows no later band reads, which lets the output
overlap the input by all but a few rows (`band_distances`), from either end (bands top first or bottom first).
Any kernel, any path: each band is an ordinary call.

A patch stage (MCUNetV2's patch-based inference, in row bands) runs a chain of windowed layers band by band:
for each band of the last layer's output rows, every layer of the chain computes just the rows the next one
reads, into a buffer of a few rows, so the chain's intermediate tensors never exist whole. Rows two bands both
read are computed twice (the halo); the extra MACs are reported (`stage_macs`).

`choose_bands` bands layers and forms stages only where that lowers the arena.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from toolchain.compiler.ir import Graph, Op, Tensor
from toolchain.compiler.ops import OPS, variants
from toolchain.compiler.ops.variants import InPlace
from toolchain.compiler.planner import align
from toolchain.compiler.ops.base import window_geometry

if TYPE_CHECKING:
    from toolchain.compiler.codegen import Emitter
    from toolchain.compiler.planner import Plan

ELEMENTWISE = {"ADD": (0, 1), "QUANTIZE": (0,), "DEQUANTIZE": (0,), "RELU": (0,), "RELU6": (0,),
               "RELU_N1_TO_1": (0,), "LOGISTIC": (0,), "TANH": (0,), "ELU": (0,), "HARD_SWISH": (0,),
               "LEAKY_RELU": (0,), "PRELU": (0,), "SUB": (0, 1), "MUL": (0, 1), "MAXIMUM": (0, 1),
               "MINIMUM": (0, 1), "SQUARED_DIFFERENCE": (0, 1)}  # binary ops: only an input of the output's size
WINDOWED = ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D")
BANDS = "band_rows"  # on a stage's first layer: rows of the last layer's output per band
STAGE_END = "stage_end"  # on a stage's first layer: the index of its last layer (absent: the layer alone)
IN_STAGE = "in_stage"  # on a later layer of a stage: the index of the first layer, whose code computes it
LOOP = "tm_b"  # the band loop's counter in the generated C
STAGE_ROWS = (1, 2, 4)  # band heights tried for a patch stage
STAGE_MAX = 4  # layers in a patch stage


_memo: dict | None = None  # while `memoized()` runs: (what, tensors, op index, stage options, ...) -> result


@contextlib.contextmanager
def memoized():
    """Within it, band geometry and scratch are computed once per layer and band choice (choose_bands plans
    hundreds of variants of one graph, which differ only in their ops' band options)."""
    global _memo
    outer, _memo = _memo, {} if _memo is None else _memo
    try:
        yield
    finally:
        _memo = outer


def _cached(what: str, g: Graph, i: int, compute, *extra):
    if _memo is None:
        return compute()
    o = g.ops[i].options
    key = (what, id(g.tensors), i, o.get(BANDS), o.get(STAGE_END), o.get(IN_STAGE),
           o.get(variants.SCRATCH_BUDGET), *extra)
    if key not in _memo:
        _memo[key] = compute()
    return _memo[key]


@dataclass(frozen=True)
class Band:
    """One layer's part of a band: its output rows [out_row, out_row + out_rows) read its input rows
    [in_row, in_row + in_rows); the window's first row starts `pad_top` rows above in_row (padding)."""
    out_row: int
    out_rows: int
    in_row: int
    in_rows: int
    pad_top: int


def _window(op: Op, g: Graph) -> tuple[int, int, int, int, int]:
    """(filter height, filter width, stride, dilation, top padding) along H."""
    if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        kh, kw = g.tensors[op.inputs[1]].shape[1:3]
    else:
        kh, kw = op.options["filterHeight"], op.options["filterWidth"]
    geo = window_geometry(op, g, kh, kw)
    return kh, kw, geo["stride"][0], geo["dilation"][0], geo["pad"][0]


def _band(op: Op, g: Graph, o0: int, o1: int) -> Band:
    """The input rows output rows [o0, o1) of a windowed layer read."""
    kh, _, stride, dilation, pad = _window(op, g)
    h = g.tensors[op.inputs[0]].nhwc()[1]
    start = o0 * stride - pad
    r0, r1 = max(start, 0), min((o1 - 1) * stride - pad + (kh - 1) * dilation + 1, h)
    return Band(o0, o1 - o0, r0, r1 - r0, r0 - start)


def stage_of(g: Graph, i: int) -> list[int]:
    """The layers op i's code computes: i alone, or its patch stage i..end."""
    return list(range(i, g.ops[i].options.get(STAGE_END, i) + 1))


def stage_bands(g: Graph, i: int, rows: int) -> list[list[Band]]:
    """Per band of `rows` rows of the stage's last output, each layer's Band, first layer first."""
    layers = stage_of(g, i)
    ho = g.tensors[g.ops[layers[-1]].outputs[0]].nhwc()[1]
    result = []
    for o0 in range(0, ho, rows):
        lo, hi, chain = o0, min(o0 + rows, ho), []
        for k in reversed(layers):
            band = _band(g.ops[k], g, lo, hi)
            chain.insert(0, band)
            lo, hi = band.in_row, band.in_row + band.in_rows
        result.append(chain)
    return result


def bands(op: Op, g: Graph, rows: int) -> list[Band]:
    """A single layer's bands of `rows` output rows."""
    ho = g.tensors[op.outputs[0]].nhwc()[1]
    return [_band(op, g, o0, min(o0 + rows, ho)) for o0 in range(0, ho, rows)]


def can_band(op: Op, g: Graph) -> bool:
    """A windowed layer on one 4-D NHWC int8 image with at least two output rows, each band reading a row."""
    if op.kind not in WINDOWED or g.tensors[op.inputs[0]].dtype != "int8":  # int16 layers run whole
        return False
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if len(inp.shape) != 4 or len(out.shape) != 4 or inp.shape[0] != 1 or out.shape[1] < 2:
        return False
    return all(b.in_rows > 0 for b in bands(op, g, 1))


def _row_bytes(t: Tensor) -> int:
    _, _, w, c = t.nhwc()
    return w * c * (t.nbytes // t.size)


def _ends(g: Graph, i: int) -> tuple[Tensor, Tensor]:
    """The stage's input and output tensors."""
    return g.tensors[g.ops[i].inputs[0]], g.tensors[g.ops[stage_of(g, i)[-1]].outputs[0]]


def band_distances(g: Graph, i: int) -> tuple[int, int]:
    """How far before its input the output may start when the bands run top to bottom (band b's copy ends
    above the first input row band b+1 reads), and how far after it when they run bottom to top (band b's copy
    starts below the last input row band b-1 reads)."""
    return _cached("distances", g, i, lambda: _band_distances(g, i))


def _band_distances(g: Graph, i: int) -> tuple[int, int]:
    parts = stage_bands(g, i, g.ops[i].options[BANDS])
    inp, out = _ends(g, i)
    irow, orow = _row_bytes(inp), _row_bytes(out)
    pairs = list(zip(parts, parts[1:]))
    if not pairs:  # one band: the copy follows every read, any overlap will do
        return -inp.nbytes, -out.nbytes
    before = max((b[-1].out_row + b[-1].out_rows) * orow - nxt[0].in_row * irow for b, nxt in pairs)
    after = max((prev[0].in_row + prev[0].in_rows) * irow - b[-1].out_row * orow for prev, b in pairs)
    return before, after


def overlaps(g: Graph, i: int, target: str) -> list[tuple[int, InPlace]]:
    """(input index, how op i's output may lie over that input): bands, an element-wise kernel, or the kernel
    variant's own `in_place` rule."""
    op = g.ops[i]
    if IN_STAGE in op.options:
        return []
    if op.options.get(BANDS):
        return [(0, InPlace(*band_distances(g, i)))]
    if op.kind in ELEMENTWISE:
        out = g.tensors[op.outputs[0]]
        return [(index, InPlace(before=max(out.nbytes - g.tensors[op.inputs[index]].nbytes, 0)))
                for index in ELEMENTWISE[op.kind] if g.tensors[op.inputs[index]].size == out.size
                and not g.tensors[g.root(op.inputs[index])].is_const]  # a constant lives in flash
    rule = _cached("in place", g, i, lambda: variants.in_place(op, g, target), target)
    return [(0, rule)] if rule is not None else []


def planned_io(g: Graph, i: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The tensors op i reads and writes as the memory planner sees it: a stage reads its first layer's inputs
    and writes its last layer's output at its first layer; the later layers of a stage touch nothing."""
    op = g.ops[i]
    if IN_STAGE in op.options:
        return (), ()
    last = g.ops[stage_of(g, i)[-1]]
    return op.inputs, last.outputs


def band_buffers(g: Graph, i: int) -> list[int]:
    """Per layer of op i's stage, its band buffer (16-byte aligned): the most rows of its output a band holds."""
    parts = stage_bands(g, i, g.ops[i].options[BANDS])
    return [align(max(b[k].out_rows for b in parts) * _row_bytes(g.tensors[g.ops[j].outputs[0]]))
            for k, j in enumerate(stage_of(g, i))]


def band_op(g: Graph, j: int, band: Band, budget: int) -> tuple[Op, Graph]:
    """Layer j restricted to one band: an op reading a view of the band's input rows and writing a band buffer,
    in a graph that has those two tensors (ids past the graph's); its kernel's scratch fits `budget`."""
    op = g.ops[j]
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    view_id, temp_id = max(g.tensors) + 1, max(g.tensors) + 2
    _, _, w, c = inp.nhwc()
    _, _, wo, co = out.nhwc()
    view = Tensor(view_id, inp.name, (1, band.in_rows, w, c), inp.dtype, inp.quant)
    temp = Tensor(temp_id, out.name, (1, band.out_rows, wo, co), out.dtype, out.quant)
    kh, kw, *_ = _window(op, g)
    left = window_geometry(op, g, kh, kw)["pad"][1]
    options = {k: v for k, v in op.options.items() if k not in (BANDS, STAGE_END, IN_STAGE)}
    options.update({"explicit_pad": (band.pad_top, left), variants.SCRATCH_BUDGET: budget})
    sub = op.replace(inputs=(view_id, *op.inputs[1:]), outputs=(temp_id,), options=options)
    return sub, g.replace(tensors={**g.tensors, view_id: view, temp_id: temp})


def _kernel_budget(g: Graph, i: int) -> int:
    return max(variants.scratch_budget(g.ops[i]) - sum(band_buffers(g, i)), 0)


def _band_calls(g: Graph, i: int) -> list[tuple[int, Op, Graph]]:
    """(how many, op, graph) for each distinct call op i's stage makes: the bands of one layer with the same
    rows and padding make the same call on other rows."""
    budget = _kernel_budget(g, i)
    seen: dict[tuple, list] = {}
    for chain in stage_bands(g, i, g.ops[i].options[BANDS]):
        for j, band in zip(stage_of(g, i), chain):
            key = (j, band.out_rows, band.in_rows, band.pad_top)
            if key in seen:
                seen[key][0] += 1
            else:
                seen[key] = [1, *band_op(g, j, band, budget)]
    return [tuple(v) for v in seen.values()]


def scratch_bytes(g: Graph, i: int, target: str) -> int:
    """Op i's scratch on path `target`: its kernel's; with bands, the band buffers and the largest scratch a
    band's call asks for; a later layer of a stage: none (the stage's first layer holds it)."""
    op = g.ops[i]
    if IN_STAGE in op.options:
        return 0
    if not op.options.get(BANDS):
        return _cached("scratch", g, i, lambda: variants.scratch_bytes(op, g, target), target)
    return _cached("scratch", g, i, lambda: sum(band_buffers(g, i)) + max(
        variants.scratch_bytes(sub, gb, target) for _, sub, gb in _band_calls(g, i)), target)


def stage_macs(g: Graph, i: int) -> int:
    """MACs op i's code computes: with a patch stage, every layer's bands, the rows computed twice included."""
    op = g.ops[i]
    if IN_STAGE in op.options:
        return 0
    if not op.options.get(BANDS):
        return OPS.get(op.kind).macs(op, g)
    return sum(n * OPS.get(sub.kind).macs(sub, gb) for n, sub, gb in _band_calls(g, i))


def _shape(chain: list[Band]) -> tuple:
    return tuple((b.out_rows, b.in_rows, b.pad_top) for b in chain)


def _runs(parts: list[list[Band]]) -> list[list[list[Band]]]:
    """Consecutive bands of the same shapes and paddings in every layer, the first layer's input rows and the last
    layer's output rows an equal step apart: one C loop each."""
    runs: list[list[list[Band]]] = []
    for chain in parts:
        last = runs[-1] if runs else None
        if last is not None and _shape(chain) == _shape(last[0]) and (
                len(last) == 1 or (chain[0].in_row - last[-1][0].in_row == last[1][0].in_row - last[0][0].in_row
                                   and chain[-1].out_row - last[-1][-1].out_row
                                   == last[1][-1].out_row - last[0][-1].out_row)):
            last.append(chain)
        else:
            runs.append([chain])
    return runs


def _times(step: int) -> str:
    return f" + {LOOP} * {step}" if step >= 0 else f" - {LOOP} * {-step}"


def emit_bands(g: Graph, i: int, em: "Emitter", plan: "Plan") -> str:
    """Op i's C: per band (a loop over bands of one shape), each layer's call on the rows the next one reads, the
    last into its band buffer, then the copy of the band to its output rows; top band first, or bottom band first
    where the output lies above the input (Overlap.after)."""
    layers = stage_of(g, i)
    inp, out = _ends(g, i)
    irow, orow = _row_bytes(inp), _row_bytes(out)
    src, dst = em.ptr(g.ops[i].inputs[0]), em.ptr(g.ops[layers[-1]].outputs[0])
    scratch = plan.scratch[i]
    temps, offset = [], 0  # within the layer's scratch buffer
    for size in band_buffers(g, i):
        temps.append(offset)
        offset += size
    kernel_scratch = scratch.size - offset
    parts = stage_bands(g, i, g.ops[i].options[BANDS])
    x, y = plan.buffers[g.root(inp.id)], plan.buffers[g.root(out.id)]
    before, after = band_distances(g, i)
    apart = x.region != y.region or y.offset + y.size <= x.offset or x.offset + x.size <= y.offset
    if not apart and x.offset - y.offset < before:  # only bottom band first keeps to the unread input
        assert y.offset - x.offset >= after, (g.ops[i].location, x, y, before, after)
        parts.reverse()
    budget = _kernel_budget(g, i)
    lines = []
    for run in _runs(parts):
        chain = run[0]
        loop = len(run) > 1
        body = []
        for k, (j, band) in enumerate(zip(layers, chain)):
            sub, gb = band_op(g, j, band, budget)
            step = _times((run[1][0].in_row - chain[0].in_row) * irow) if loop else ""
            view = f"({src} + {band.in_row * irow}{step})" if k == 0 else em.scratch_ptr(i, temps[k - 1])
            em.views = {sub.inputs[0]: view, sub.outputs[0]: em.scratch_ptr(i, temps[k])}
            em.scratch_at = (scratch.offset + offset, kernel_scratch) if kernel_scratch > 0 else None
            body.append(f"TM_CHECK({variants.emit(sub, gb, em)});")
            em.views, em.scratch_at = {}, None
        out_step = _times((run[1][-1].out_row - chain[-1].out_row) * orow) if loop else ""
        body.append(f"memcpy({dst} + {chain[-1].out_row * orow}{out_step}, {em.scratch_ptr(i, temps[-1])}, "
                    f"{chain[-1].out_rows * orow});")
        if loop:
            lines.append(f"for (int32_t {LOOP} = 0; {LOOP} < {len(run)}; ++{LOOP}) {{")
            lines += ["    " + s for s in body] + ["}"]
        else:
            lines += body
    return "\n    ".join(lines)


def with_bands(g: Graph, chosen: dict[int, int], stages: dict[int, int] | None = None) -> Graph:
    """The graph with layer i run in bands of chosen[i] output rows, and layers i..stages[i] as one patch stage
    (in bands of chosen[i] rows of layer stages[i]'s output)."""
    stages = stages or {}
    inner = {j: i for i, end in stages.items() for j in range(i + 1, end + 1)}
    ops = []
    for j, op in enumerate(g.ops):
        options = {k: v for k, v in op.options.items() if k not in (BANDS, STAGE_END, IN_STAGE)}
        if j in inner:
            options[IN_STAGE] = inner[j]
        elif j in chosen:
            options[BANDS] = chosen[j]
            if j in stages:
                options[STAGE_END] = stages[j]
        ops.append(op.replace(options=options))
    return g.replace(ops=tuple(ops))


def stage_candidates(g: Graph) -> list[tuple[int, int]]:
    """(first, last) of chains of 2..STAGE_MAX windowed layers, each feeding only the next (an intermediate tensor
    that is a graph output or read elsewhere must exist whole)."""
    outputs = {g.root(t) for t in g.outputs}
    found = []
    for i in range(len(g.ops)):
        for end in range(i + 1, min(i + STAGE_MAX, len(g.ops))):
            mid = g.ops[end - 1].outputs[0]
            if not can_band(g.ops[end], g) or g.ops[end].inputs[0] != mid or g.root(mid) in outputs \
                    or len(g.consumers(mid)) != 1 or not can_band(g.ops[end - 1], g):
                break
            found.append((i, end))
    return [(i, end) for i, end in found if all(b.in_rows > 0 for chain in stage_bands(
        with_bands(g, {i: 1}, {i: end}), i, 1) for b in chain)]


def choose_bands(g: Graph, arena: Callable[[Graph], int]) -> Graph:
    """Row bands and patch stages where they lower the arena (`arena(graph)`): with every other layer that can be
    banded in bands, add the patch stage (band height from STAGE_ROWS, the tallest of the best) that lowers the
    arena most, as long as one does; then return each single layer to one call, smallest first, while the arena
    stays that small, and make each layer's bands as tall as the arena allows (bands cost a copy and a call per
    band, a patch stage its halo rows)."""
    singles = [i for i, op in enumerate(g.ops) if can_band(op, g)]
    stages: dict[int, tuple[int, int]] = {}  # first layer -> (last layer, band rows)

    def config(stages):
        inner = {j for i, (end, _) in stages.items() for j in range(i, end + 1)}
        return {j: 1 for j in singles if j not in inner} | {i: rows for i, (_, rows) in stages.items()}

    def size(chosen, stages):
        return arena(with_bands(g, chosen, {i: end for i, (end, _) in stages.items()}))

    best = size(config(stages), stages)
    while True:
        trials = []
        for i, end in stage_candidates(g):
            if any(not (end < s or e < i) for s, (e, _) in stages.items()):
                continue
            for rows in STAGE_ROWS:
                trial = {**stages, i: (end, rows)}
                trials.append((size(config(trial), trial), -rows, i, end))
        if not trials or min(trials)[0] >= best:
            break
        best, rows, i, end = min(trials)
        stages[i] = (end, -rows)
    chosen = config(stages)
    if best >= arena(g):
        return g
    sizes = {i: g.tensors[g.ops[i].inputs[0]].nbytes + g.tensors[g.ops[i].outputs[0]].nbytes for i in singles}
    for i in sorted((j for j in chosen if j not in stages), key=lambda j: (sizes[j], j)):
        trial = {j: r for j, r in chosen.items() if j != i}
        if size(trial, stages) <= best:
            chosen = trial
    for i in sorted(chosen, key=lambda j: (-sizes.get(j, 0), j)):  # taller bands: fewer calls, less halo
        end = stages.get(i, (i, 0))[0]
        rows_out = g.tensors[g.ops[end].outputs[0]].nhwc()[1]
        for rows in (2, 3, 4, 6, 8, 12, 16, 24, 32):
            if rows >= rows_out or rows <= chosen[i]:
                continue
            if size({**chosen, i: rows}, stages) > best:
                break
            chosen = {**chosen, i: rows}
    return with_bands(g, chosen, {i: end for i, (end, _) in stages.items()})
