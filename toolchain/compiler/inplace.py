"""Where a layer may write over the input it is finishing, and row bands.

Element-wise kernels (ADD, requantize, ReLU, (de)quantize) read element i before they write element i, in
increasing order, on every kernel path: their output may start where their input starts (a larger output
element: as far before it as the output outgrows the input).

Windowed layers (CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, MAX_POOL_2D) do not read that way, so the compiler
may run them in row bands instead: the layer's kernel is called once per band of output rows, on just the input
rows that band reads (its own top padding), into a band buffer in the layer's scratch, and the band is then copied
to its place in the output. A band's copy only lands on input rows no later band reads, which lets the output
overlap the input by all but a few rows (`band_distance`). Any kernel, any path: each band is an ordinary call.
`choose_bands` bands only the layers that lower the arena.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from toolchain.compiler.ir import Graph, Op, Tensor
from toolchain.compiler.ops import variants
from toolchain.compiler.ops.base import window_geometry

if TYPE_CHECKING:
    from toolchain.compiler.codegen import Emitter
    from toolchain.compiler.planner import Plan

ELEMENTWISE = {"ADD": (0, 1), "QUANTIZE": (0,), "DEQUANTIZE": (0,), "RELU": (0,), "RELU6": (0,),
               "RELU_N1_TO_1": (0,)}
WINDOWED = ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D")
BANDS = "band_rows"  # op option: output rows per band (absent: one call for the whole layer)
LOOP = "tm_b"  # the band loop's counter in the generated C


@dataclass(frozen=True)
class Band:
    """Output rows [out_row, out_row + out_rows) read input rows [in_row, in_row + in_rows); the window's first
    row starts `pad_top` rows above in_row (padding)."""
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


def bands(op: Op, g: Graph, rows: int) -> list[Band]:
    kh, _, stride, dilation, pad = _window(op, g)
    h, ho = g.tensors[op.inputs[0]].nhwc()[1], g.tensors[op.outputs[0]].nhwc()[1]
    out = []
    for o0 in range(0, ho, rows):
        o1 = min(o0 + rows, ho)
        start = o0 * stride - pad
        r0, r1 = max(start, 0), min((o1 - 1) * stride - pad + (kh - 1) * dilation + 1, h)
        out.append(Band(o0, o1 - o0, r0, r1 - r0, r0 - start))
    return out


def can_band(op: Op, g: Graph) -> bool:
    """A windowed layer on one 4-D NHWC int8 image with at least two output rows, each band reading a row."""
    if op.kind not in WINDOWED:
        return False
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if len(inp.shape) != 4 or len(out.shape) != 4 or inp.shape[0] != 1 or out.shape[1] < 2:
        return False
    return all(b.in_rows > 0 for b in bands(op, g, 1))


def _row_bytes(t: Tensor) -> int:
    _, _, w, c = t.nhwc()
    return w * c * (t.nbytes // t.size)


def band_distances(op: Op, g: Graph) -> tuple[int, int]:
    """How far before its input the output may start when the bands run top to bottom (band b's copy ends
    above the first input row band b+1 reads), and how far after it when they run bottom to top (band b's copy
    starts below the last input row band b-1 reads)."""
    parts = bands(op, g, op.options[BANDS])
    irow, orow = _row_bytes(g.tensors[op.inputs[0]]), _row_bytes(g.tensors[op.outputs[0]])
    pairs = list(zip(parts, parts[1:]))
    before = max((b.out_row + b.out_rows) * orow - nxt.in_row * irow for b, nxt in pairs)
    after = max((prev.in_row + prev.in_rows) * irow - b.out_row * orow for prev, b in pairs)
    return before, after


def overlaps(op: Op, g: Graph, target: str) -> list[tuple[int, int | None, int | None]]:
    """(input index, before, after): the output may start `before` bytes or more before that input, or `after`
    bytes or more after it (None: not that way)."""
    if op.options.get(BANDS):
        return [(0, *band_distances(op, g))]
    if op.kind not in ELEMENTWISE:
        return []
    out = g.tensors[op.outputs[0]]
    result = []
    for index in ELEMENTWISE[op.kind]:
        inp = g.tensors[op.inputs[index]]
        if inp.size == out.size:
            result.append((index, max(out.nbytes - inp.nbytes, 0), None))
    return result


def _align(n: int) -> int:
    return (n + 15) // 16 * 16


def band_bytes(op: Op, g: Graph) -> int:
    """The band buffer: `rows` output rows, at the start of the layer's scratch (16-byte aligned after it)."""
    return _align(op.options[BANDS] * _row_bytes(g.tensors[op.outputs[0]]))


def band_op(op: Op, g: Graph, band: Band) -> tuple[Op, Graph]:
    """The layer restricted to one band: an op reading a view of the band's input rows and writing the band
    buffer, in a graph that has those two tensors (ids past the graph's)."""
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    view_id, temp_id = max(g.tensors) + 1, max(g.tensors) + 2
    _, _, w, c = inp.nhwc()
    _, _, wo, co = out.nhwc()
    view = Tensor(view_id, inp.name, (1, band.in_rows, w, c), inp.dtype, inp.quant)
    temp = Tensor(temp_id, out.name, (1, band.out_rows, wo, co), out.dtype, out.quant)
    kh, kw, *_ = _window(op, g)
    left = window_geometry(op, g, kh, kw)["pad"][1]
    budget = max(variants.scratch_budget(op) - band_bytes(op, g), 0)
    options = {k: v for k, v in op.options.items() if k != BANDS}
    options.update({"explicit_pad": (band.pad_top, left), variants.SCRATCH_BUDGET: budget})
    sub = op.replace(inputs=(view_id, *op.inputs[1:]), outputs=(temp_id,), options=options)
    return sub, g.replace(tensors={**g.tensors, view_id: view, temp_id: temp})


def scratch_bytes(op: Op, g: Graph, target: str) -> int:
    """The layer's scratch on path `target`: its kernel's, or with bands the band buffer and the largest
    scratch a band's call asks for."""
    if not op.options.get(BANDS):
        return variants.scratch_bytes(op, g, target)
    kernel = max(variants.scratch_bytes(*band_op(op, g, b), target) for b in bands(op, g, op.options[BANDS]))
    return band_bytes(op, g) + kernel


def _runs(parts: list[Band]) -> list[list[Band]]:
    """Consecutive bands of the same shape and padding, their input rows an equal step apart: one C loop each."""
    runs: list[list[Band]] = []
    for b in parts:
        last = runs[-1] if runs else None
        same = last is not None and (b.out_rows, b.in_rows, b.pad_top) == (last[0].out_rows, last[0].in_rows,
                                                                            last[0].pad_top)
        if same and (len(last) == 1 or b.in_row - last[-1].in_row == last[1].in_row - last[0].in_row):
            last.append(b)
        else:
            runs.append([b])
    return runs


def emit_bands(op: Op, g: Graph, em: "Emitter", plan: "Plan", op_index: int) -> str:
    """The layer's C: per band (a loop over bands of one shape), the kernel call into the band buffer, then the
    copy of the band to its output rows; top band first, or bottom band first where the output lies above the
    input (Overlap.after)."""
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    irow, orow = _row_bytes(inp), _row_bytes(out)
    src, dst = em.ptr(op.inputs[0]), em.ptr(op.outputs[0])
    scratch = plan.scratch[op_index]
    temp, kernel_scratch = scratch.offset, scratch.size - band_bytes(op, g)
    parts = bands(op, g, op.options[BANDS])
    x, y = plan.buffers[g.root(op.inputs[0])], plan.buffers[g.root(op.outputs[0])]
    before, after = band_distances(op, g)
    apart = y.offset + y.size <= x.offset or x.offset + x.size <= y.offset
    if not apart and x.offset - y.offset < before:  # only bottom band first keeps to the unread input
        assert y.offset - x.offset >= after, (op.location, x, y, before, after)
        parts.reverse()
    lines = []
    for run in _runs(parts):
        first = run[0]
        sub, gb = band_op(op, g, first)
        loop = len(run) > 1
        step = _times((run[1].in_row - first.in_row) * irow) if loop else ""
        out_step = _times((run[1].out_row - first.out_row) * orow) if loop else ""
        em.views = {sub.inputs[0]: f"({src} + {first.in_row * irow}{step})", sub.outputs[0]: f"(tm_arena + {temp})"}
        em.scratch_at = (temp + band_bytes(op, g), kernel_scratch) if kernel_scratch > 0 else None
        call = variants.emit(sub, gb, em)
        em.views, em.scratch_at = {}, None
        body = [f"TM_CHECK({call});",
                f"memcpy({dst} + {first.out_row * orow}{out_step}, tm_arena + {temp}, {first.out_rows * orow});"]
        if loop:
            lines.append(f"for (int32_t {LOOP} = 0; {LOOP} < {len(run)}; ++{LOOP}) {{")
            lines += ["    " + s for s in body] + ["}"]
        else:
            lines += body
    return "\n    ".join(lines)


def _times(step: int) -> str:
    return f" + {LOOP} * {step}" if step >= 0 else f" - {LOOP} * {-step}"


def with_bands(g: Graph, chosen: dict[int, int]) -> Graph:
    """The graph with layer i run in bands of chosen[i] output rows (the others as one call)."""
    ops = tuple(op.replace(options={**op.options, BANDS: chosen[i]}) if i in chosen else op
                for i, op in enumerate(g.ops))
    return g.replace(ops=ops)


def choose_bands(g: Graph, arena: Callable[[Graph], int]) -> Graph:
    """Band every layer that can be, keep that only if the arena (`arena(graph)`) shrinks, then return each layer
    to one call, smallest first, while the arena stays that small."""
    candidates = [i for i, op in enumerate(g.ops) if can_band(op, g)]
    if not candidates:
        return g
    chosen = {i: 1 for i in candidates}
    best = arena(with_bands(g, chosen))
    if best >= arena(g):
        return g
    size = {i: g.tensors[g.ops[i].inputs[0]].nbytes + g.tensors[g.ops[i].outputs[0]].nbytes for i in candidates}
    for i in sorted(candidates, key=lambda i: (size[i], i)):
        trial = {j: r for j, r in chosen.items() if j != i}
        if arena(with_bands(g, trial)) <= best:
            chosen = trial
    return with_bands(g, chosen)
