"""A structured mutator: edits a .tflite's object tree (ids, shapes, quantization, options, buffers,
operator order) instead of its bytes, so that mutants get past the flatbuffer parser and reach the
validation and the compiler."""
from __future__ import annotations

import math
import random

import numpy as np

import tflite_edit as te

_SPECIAL_INTS = [-(2 ** 31), -65536, -2, -1, 0, 1, 2, 3, 7, 127, 128, 255, 256, 262145, 2 ** 31 - 1]
_SPECIAL_FLOATS = [0.0, -0.0, -1.0, 1e-45, 1e-38, 1e-12, 1.0, 1e30, math.inf, -math.inf, math.nan]


def _pick_int(rng: random.Random, current: int) -> int:
    choice = rng.random()
    if choice < 0.5:
        return rng.choice(_SPECIAL_INTS)
    return int(current) + rng.choice([-2, -1, 1, 2, 8])


def _mutate_tensor(rng, model, sg) -> None:
    t = rng.choice(sg.tensors)
    what = rng.randrange(6)
    if what == 0 and t.shape is not None and len(t.shape):
        shape = list(t.shape)
        i = rng.randrange(len(shape))
        shape[i] = _pick_int(rng, shape[i])
        t.shape = np.array(shape, dtype=np.int32)
    elif what == 1:  # rank change
        shape = list(t.shape if t.shape is not None else [])
        shape = shape + [1] if rng.random() < 0.5 or not shape else shape[:-1]
        t.shape = np.array(shape, dtype=np.int32)
    elif what == 2 and t.quantization is not None and t.quantization.scale is not None:
        scale = list(t.quantization.scale)
        if scale:
            scale[rng.randrange(len(scale))] = rng.choice(_SPECIAL_FLOATS)
        elif rng.random() < 0.5:
            scale = [rng.choice(_SPECIAL_FLOATS)]
        t.quantization.scale = np.array(scale, dtype=np.float32)
    elif what == 3 and t.quantization is not None:
        zps = list(t.quantization.zeroPoint if t.quantization.zeroPoint is not None else [])
        if zps and rng.random() < 0.8:
            zps[rng.randrange(len(zps))] = _pick_int(rng, zps[0])
        else:
            zps = [] if rng.random() < 0.5 else zps + [0]
        t.quantization.zeroPoint = np.array(zps, dtype=np.int64)
    elif what == 4:
        t.type = rng.randrange(0, 20)
    else:
        t.buffer = _pick_int(rng, t.buffer)


def _mutate_operator(rng, model, sg) -> None:
    if not sg.operators:
        return
    o = rng.choice(sg.operators)
    what = rng.randrange(5)
    n = len(sg.tensors)
    if what == 0 and o.inputs is not None and len(o.inputs):
        ins = list(o.inputs)
        ins[rng.randrange(len(ins))] = rng.choice([-1, n, n + 100, rng.randrange(n)])
        o.inputs = np.array(ins, dtype=np.int32)
    elif what == 1 and o.outputs is not None and len(o.outputs):
        outs = list(o.outputs)
        outs[rng.randrange(len(outs))] = rng.choice([-1, n, rng.randrange(n)])
        o.outputs = np.array(outs, dtype=np.int32)
    elif what == 2 and o.inputs is not None:
        ins = list(o.inputs)
        o.inputs = np.array(ins[:-1] if ins and rng.random() < 0.7 else ins + [rng.randrange(n)], dtype=np.int32)
    elif what == 3 and o.builtinOptions is not None:
        fields = [k for k, v in vars(o.builtinOptions).items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if fields:
            key = rng.choice(fields)
            current = getattr(o.builtinOptions, key)
            value = rng.choice(_SPECIAL_FLOATS) if isinstance(current, float) else _pick_int(rng, current)
            setattr(o.builtinOptions, key, value)
    else:
        o.opcodeIndex = _pick_int(rng, o.opcodeIndex) if rng.random() < 0.3 else rng.randrange(
            len(model.operatorCodes))


def _mutate_graph(rng, model, sg) -> None:
    what = rng.randrange(5)
    n = len(sg.tensors)
    if what == 0 and sg.operators and len(sg.operators) > 1:
        i, j = rng.sample(range(len(sg.operators)), 2)
        sg.operators[i], sg.operators[j] = sg.operators[j], sg.operators[i]
    elif what == 1 and sg.operators:
        del sg.operators[rng.randrange(len(sg.operators))]
    elif what == 2:
        sg.inputs = np.array([] if rng.random() < 0.3 else [rng.choice([-1, n, rng.randrange(n)])], dtype=np.int32)
    elif what == 3:
        sg.outputs = np.array([] if rng.random() < 0.3 else [rng.choice([-1, n, rng.randrange(n)])], dtype=np.int32)
    elif model.signatureDefs:
        sig = model.signatureDefs[0]
        ios = list(sig.inputs or []) + list(sig.outputs or [])
        if ios:
            rng.choice(ios).tensorIndex = rng.choice([-1, n, rng.randrange(n)])


def _mutate_buffer(rng, model, sg) -> None:
    candidates = [b for b in model.buffers or [] if b.data is not None and len(b.data)]
    if not candidates:
        return
    b = rng.choice(candidates)
    data = np.asarray(b.data, dtype=np.uint8)
    if rng.random() < 0.5:
        b.data = data[: rng.randrange(len(data))]
    else:
        data = data.copy()
        data[rng.randrange(len(data))] = rng.randrange(256)
        b.data = data


_INT_TYPES = {2: np.int32, 4: np.int64}  # schema.TensorType INT32, INT64


def _mutate_int_constant(rng, model, sg) -> None:
    """One value of a small integer constant (an axis, a size, an index, an output shape, a block shape...) set to
    a boundary value or moved by a little: a byte flip rarely makes -1 or 2^31 - 1."""
    candidates = [t for t in sg.tensors if t.type in _INT_TYPES and 0 <= t.buffer < len(model.buffers or [])
                  and model.buffers[t.buffer].data is not None and 0 < len(model.buffers[t.buffer].data) <= 128]
    if not candidates:
        return
    t = rng.choice(candidates)
    buffer = model.buffers[t.buffer]
    dtype = _INT_TYPES[t.type]
    raw = np.asarray(buffer.data, np.uint8).tobytes()
    values = np.frombuffer(raw[: len(raw) // np.dtype(dtype).itemsize * np.dtype(dtype).itemsize], dtype).copy()
    if not len(values):
        return
    i = rng.randrange(len(values))
    values[i] = int(np.clip(_pick_int(rng, int(values[i])), np.iinfo(dtype).min, np.iinfo(dtype).max))
    buffer.data = np.frombuffer(values.tobytes(), np.uint8)


_MUTATIONS = [_mutate_tensor, _mutate_tensor, _mutate_operator, _mutate_operator, _mutate_graph, _mutate_buffer,
              _mutate_int_constant, _mutate_int_constant]


def mutate(buf: bytes, rng: random.Random, edits: int | None = None) -> bytes | None:
    """1-3 structured edits of `buf`; None when it cannot be unpacked or packed again."""
    try:
        model = te.unpack(buf)
        sg = te.subgraph(model)
        if not sg.tensors:
            return None
        for _ in range(edits or rng.randint(1, 3)):
            rng.choice(_MUTATIONS)(rng, model, sg)
        return te.pack(model)
    except Exception:  # the mutator's own limits (a value the packer cannot encode): not a finding
        return None
