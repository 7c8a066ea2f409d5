"""SPACE_TO_BATCH_ND -> convolution -> BATCH_TO_SPACE_ND (how the TFLite converter writes a dilated convolution when
the batch is unknown) back to the one dilated convolution our kernels run.

Output row p of the pattern reads padded input row p + crop + m * block (the batches interleave back), i.e. input
row p - (pad - crop) + m * block: a window dilated by the block, with leading padding pad - crop. Every row it reads
lies in the padded input, and padding adds nothing either way (SPACE_TO_BATCH_ND pads with its output's zero point;
the kernels skip padding, which is the same once the zero point is subtracted), so the sums are the same; the stored
output shape bounds the rows. A Conv1D comes as the same pattern on 3-D tensors, with an EXPAND_DIMS (or RESHAPE)
to 4-D after SPACE_TO_BATCH_ND and a RESHAPE back before BATCH_TO_SPACE_ND. Fused only when all of this follows from
constants and single consumers; otherwise the ops stay and are refused as unsupported.
"""
from __future__ import annotations

import dataclasses

from toolchain.compiler.ir import Graph, Op, Tensor
from toolchain.compiler.ops.base import same_quant

CONVOLUTIONS = ("CONV_2D", "DEPTHWISE_CONV_2D")
VIEWS = ("EXPAND_DIMS", "RESHAPE", "SQUEEZE")  # a Conv1D's way to and from 4-D: shape only


def fuse_space_to_batch(g: Graph) -> Graph:
    ops = list(g.ops)
    tensors = dict(g.tensors)
    removed: set[int] = set()
    for i, op in enumerate(ops):
        if op.kind != "SPACE_TO_BATCH_ND" or i in removed:
            continue
        chain = _chain(g, i)
        rewrite = _rewrite(g, [ops[k] for k in chain]) if chain else None
        if rewrite is None:
            continue
        new_ops, resolved = rewrite
        for k, new in zip(chain[1:-1], new_ops):
            ops[k] = new
        tensors.update({t.id: t for t in resolved})
        removed |= {chain[0], chain[-1]}
    return g.replace(tensors=tensors, ops=tuple(op for i, op in enumerate(ops) if i not in removed))


def _next(g: Graph, tid: int) -> int | None:
    """The one op reading `tid` (as its first input), if it is not also a graph output."""
    users = g.consumers(tid)
    if len(users) == 1 and tid not in g.outputs and g.ops[users[0]].inputs[0] == tid:
        return users[0]
    return None


def _chain(g: Graph, s2b: int) -> list[int] | None:
    """Op indices [SPACE_TO_BATCH_ND, (view), convolution, (view), BATCH_TO_SPACE_ND], each the only reader of the
    one before, or None."""
    chain = [s2b]
    for wanted in ("view", "conv", "view", "b2s"):
        if not g.ops[chain[-1]].outputs:  # the batch ops have no kernel, so nothing checked their arity
            return None
        k = _next(g, g.ops[chain[-1]].outputs[0])
        if k is None:
            return None
        kind = g.ops[k].kind
        if wanted == "view" and kind not in VIEWS:
            continue
        if (wanted == "conv" and kind not in CONVOLUTIONS) or (wanted == "b2s" and kind != "BATCH_TO_SPACE_ND"):
            return None
        chain.append(k)
    return chain if len(chain) in (3, 5) else None


def _constants(g: Graph, block_id: int, pads_id: int, rank: int):
    """(block, [(before, after)] per spatial axis) from constants of `rank` spatial axes, or None."""
    block, pads = g.tensors[block_id], g.tensors[pads_id]
    if not (block.is_const and pads.is_const and block.shape == (rank,) and pads.shape == (rank, 2)) or \
            {block.dtype, pads.dtype} - {"int32", "int64"}:
        return None  # (a float NaN is no block size)
    b = [int(v) for v in block.data]
    p = [(int(lo), int(hi)) for lo, hi in pads.data]
    return (b, p) if min(b) >= 1 and min(min(pair) for pair in p) >= 0 else None


def _rewrite(g: Graph, chain: list[Op]) -> tuple[list[Op], list[Tensor]] | None:
    """The ops between the two batch ops rewritten to one dilated convolution (and its views), with the tensors
    whose shapes that fixes; None when the pattern is not provably one."""
    s2b, b2s = chain[0], chain[-1]
    if not all(len(op.inputs) == 3 and min(op.inputs) >= 0 for op in (s2b, b2s)) or not b2s.outputs:
        return None  # (input, block shape, paddings or crops), none omitted
    conv = next(op for op in chain if op.kind in CONVOLUTIONS)
    t = g.tensors
    x, out, w = t[s2b.inputs[0]], t[b2s.outputs[0]], t[conv.inputs[1]]
    # The batch ops and views move bytes: each side of the convolution keeps one quantization.
    copies = [(x, t[s2b.outputs[0]]), (x, t[conv.inputs[0]]), (t[conv.outputs[0]], t[b2s.inputs[0]]),
              (t[conv.outputs[0]], out)]
    if x.unknown or not x.shape or x.shape[0] != 1 or len(w.shape) != 4 or len(out.shape) != len(x.shape) or \
            not all(same_quant(a, b) for a, b in copies) or not _plain(conv):
        return None
    rank = len(x.shape) - 2
    if rank not in (1, 2):
        return None
    space, batch = _constants(g, *s2b.inputs[1:], rank), _constants(g, *b2s.inputs[1:], rank)
    if space is None or batch is None or space[0] != batch[0] or (len(chain) == 5) != (rank == 1):
        return None
    if rank == 2:
        fused = _window(x.shape, w, *space, batch[1], out.shape)
        if fused is None:
            return None
        return [_dilated(conv, fused, x.id, out.id)], [_static(out, out.shape)]
    return _rewrite_1d(g, chain, space, batch[1])


def _rewrite_1d(g: Graph, chain: list[Op], space, crops) -> tuple[list[Op], list[Tensor]] | None:
    """Conv1D: [1, T, C] is viewed as [1, 1, T, C] (or [1, T, 1, C]) around the convolution."""
    view_in, conv, view_out = chain[1:4]
    t = g.tensors
    x, out = t[chain[0].inputs[0]], t[chain[-1].outputs[0]]
    y, y4, z4, z = (t[tid] for tid in (view_in.inputs[0], view_in.outputs[0], conv.outputs[0], view_out.outputs[0]))
    axis = next((a for a in (1, 2) if y4.shape == _inserted(y.shape, a) and z4.shape == _inserted(z.shape, a)), None)
    if axis is None:
        return None
    (block,), (pads,) = space
    (crop,) = crops
    if axis == 1:
        block2, pads2, crops2 = [1, block], [(0, 0), pads], [(0, 0), crop]
    else:
        block2, pads2, crops2 = [block, 1], [pads, (0, 0)], [crop, (0, 0)]
    x4, out4 = _inserted(x.shape, axis), _inserted(out.shape, axis)
    fused = _window(x4, t[conv.inputs[1]], block2, pads2, crops2, out4)  # a window of 1 along the inserted axis
    if fused is None:
        return None
    new_in = view_in.replace(inputs=(x.id,) + (view_in.inputs[1:] if view_in.kind == "EXPAND_DIMS" else ()),
                             options=_without_shape(view_in))
    new_out = view_out.replace(inputs=(z4.id,), outputs=(out.id,), options=_without_shape(view_out))
    return ([new_in, _dilated(conv, fused, y4.id, z4.id), new_out],
            [_static(y4, x4), _static(z4, out4), _static(out, out.shape)])


def _inserted(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    return (*shape[:axis], 1, *shape[axis:])


def _without_shape(view: Op) -> dict:
    """A view's options without a new shape that described the padded tensor (the output's stored shape counts)."""
    return {k: v for k, v in view.options.items() if k != "newShape"}


def _plain(conv: Op) -> bool:
    o = conv.options
    return (o.get("strideH", 1), o.get("strideW", 1), o.get("dilationHFactor", 1), o.get("dilationWFactor", 1)) == \
        (1, 1, 1, 1) and o.get("padding") == "VALID" and "explicit_pad" not in o


def _window(x4, w: Tensor, block, pads, crops, out4):
    """(dilation, leading padding) per spatial axis of the convolution equal to the pattern, or None."""
    explicit = []
    for axis in range(2):
        padded = x4[axis + 1] + sum(pads[axis])
        rows = padded // block[axis] - w.shape[axis + 1] + 1  # the VALID convolution on each batch
        lead = pads[axis][0] - crops[axis][0]
        if padded % block[axis] or rows < 1 or lead < 0 or out4[axis + 1] != rows * block[axis] - sum(crops[axis]):
            return None
        explicit.append(lead)
    return tuple(block), tuple(explicit)


def _dilated(conv: Op, fused, input_id: int, output_id: int) -> Op:
    (dh, dw), explicit = fused
    options = {**conv.options, "dilationHFactor": dh, "dilationWFactor": dw, "explicit_pad": explicit}
    return conv.replace(inputs=(input_id,) + conv.inputs[1:], outputs=(output_id,), options=options)


def _static(t: Tensor, shape) -> Tensor:
    return dataclasses.replace(t, shape=(1, *tuple(shape)[1:]), unknown=())
