"""IR Graph + Plan -> model.c / model.h. Ops describe their call; the Emitter owns every declaration."""
from __future__ import annotations

import itertools
import re
import string
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

from toolchain.compiler import cmsis_nn, inplace
from toolchain.compiler.ir import Graph
from toolchain.compiler.ops import OPS, variants
from toolchain.compiler.ops.params import ArenaPointer, Context, CStruct, Dims, Quant, Symbol, arena_symbol, designated
from toolchain.compiler.planner import Plan
from toolchain.errors import ToolchainError

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
)
_C_TYPES = {"int8": "int8_t", "int32": "int32_t", "float32": "float", "int16": "int16_t", "uint8": "uint8_t",
            "int64": "int64_t"}
_PER_LINE = 24


def _c_list(values) -> str:
    items = [str(v) for v in values]
    lines = [", ".join(items[i:i + _PER_LINE]) for i in range(0, len(items), _PER_LINE)]
    return "\n    " + ",\n    ".join(lines) + "\n"


class Emitter:
    """Hands out C symbols for constants, parameter structs and tensor pointers, and collects their
    declarations in order. Identical declarations are emitted once."""

    def __init__(self, g: Graph, plan: Plan, target: str = "ref", reference: str = "litert"):
        self.g, self.plan = g, plan
        self.target, self.reference = target, reference  # the kernel path; whose rounding to reproduce
        self.decls: list[str] = []
        self._seen: dict[str, str] = {}
        self._consts: dict[int, str] = {}
        self._ids = itertools.count()
        self.op_index = 0
        self.const_bytes = 0
        self.views: dict[int, str] = {}  # tensor id -> its C pointer (a layer's row band, inplace.emit_bands)
        self.scratch_at: tuple[int, int] | None = None  # (arena offset, bytes): the scratch of a band's call

    def _declare(self, prefix: str, template: str, nbytes: int = 0) -> str:
        """`template` contains @NAME@ where the symbol goes; equal declarations share one symbol."""
        if template in self._seen:
            return self._seen[template]
        self.const_bytes += nbytes
        name = f"tm_{prefix}{next(self._ids)}"
        self._seen[template] = name
        self.decls.append(template.replace("@NAME@", name))
        return name

    def array(self, ctype: str, values, prefix: str) -> str:
        values = list(values)
        return self._declare(prefix, f"static const {ctype} @NAME@[{len(values)}] TM_WEIGHTS_ATTR = "
                                     f"{{{_c_list(values)}}};",
                             len(values) * (8 if ctype == "double" else 4))

    def weights(self, ctype: str, values, prefix: str, comment: str = "") -> str:
        """A word-aligned constant array in flash counted as model weights: re-laid-out weights, folded
        biases and other per-layer data a kernel variant reads (`values` a flat sequence)."""
        values = [int(v) for v in np.asarray(values).reshape(-1)]
        size = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4, "uint32_t": 4}[ctype]
        note = f"/* {c_comment(comment)} */\n" if comment else ""
        return self._declare(prefix, f"{note}static const {ctype} @NAME@[{max(len(values), 1)}] TM_ALIGNED(4) "
                                     "TM_WEIGHTS_ATTR = "
                                     f"{{{_c_list(values or [0])}}};", len(values) * size)

    def static(self, ctype: str, prefix: str, init: str) -> str:
        return self._declare(prefix, f"static const {ctype} @NAME@ = {init};")

    def params(self, struct: CStruct) -> str:
        """A parameter struct of tm_nn.h, declared with a designated initialiser."""
        return self.static(struct.CTYPE, struct.PREFIX, designated(struct))

    def quant(self, multipliers: list[int], shifts: list[int]) -> str:
        per_channel = len(set(zip(multipliers, shifts))) > 1
        if not per_channel:
            multipliers, shifts = multipliers[:1], shifts[:1]
        return self.params(Quant(multiplier=Symbol(self.array("int32_t", multipliers, "mult")),
                                 shift=Symbol(self.array("int32_t", shifts, "shift")), per_channel=int(per_channel)))

    def dims_value(self, shape4) -> str:
        return "&" + self.params(Dims(*shape4))

    def context(self) -> str:
        """The current op's tm_context: its scratch buffer in the arena, as the planner placed it."""
        scratch = self.plan.scratch.get(self.op_index)
        if self.scratch_at is not None:
            offset, size = self.scratch_at
        elif scratch is not None and not self.views:
            offset, size = scratch.offset, scratch.size
        else:
            return "&tm_no_scratch"
        return "&" + self.params(Context(buf=ArenaPointer(offset, scratch.region), size=size))

    def const(self, tid: int) -> str:
        if tid not in self._consts:
            t = self.g.tensors[tid]
            ctype = _C_TYPES[t.dtype]
            data = t.data.reshape(-1)
            self.const_bytes += t.nbytes
            name = f"tm_w{tid}"
            self.decls.append(f"/* '{c_comment(t.name)}' {t.dtype} {list(t.shape)} */\n"
                              f"static const {ctype} {name}[{max(len(data), 1)}] TM_ALIGNED(4) TM_WEIGHTS_ATTR = "
                              f"{{{_c_list(data.tolist() if len(data) else [0])}}};")
            self._consts[tid] = name
        return self._consts[tid]

    def ptr(self, tid: int, ctype: str = "int8_t") -> str:
        if tid in self.views:
            view = self.views[tid]
            return view if ctype == "int8_t" else f"(({ctype} *){view})"
        root = self.g.root(tid)
        t = self.g.tensors[root]
        if t.is_const:
            return self.const(root)
        buf = self.plan.buffers[root]
        at = f"{arena_symbol(buf.region)} + {buf.offset}"
        return f"({at})" if ctype == "int8_t" else f"(({ctype} *)({at}))"

    def scratch_ptr(self, op_index: int, offset: int = 0) -> str:
        """`offset` bytes into op `op_index`'s scratch buffer, as a C pointer expression."""
        buf = self.plan.scratch[op_index]
        return f"({arena_symbol(buf.region)} + {buf.offset + offset})"


@dataclass(frozen=True)
class Layer:
    index: int
    kind: str
    location: str
    macs: int
    call: str  # the kernel call (empty when `block` holds the layer's statements)
    exit_check: str = ""  # C statement run after this layer: an early exit
    dumps: tuple[str, ...] = ()  # TM_DUMP calls for the layer's outputs (active only with TM_DUMP_TENSORS)
    block: str = ""  # the layer's statements when it is more than one call (row bands)


def exit_check(g: Graph, plan: Plan, em: Emitter, k: int, point) -> str:
    out = g.tensors[point.output]
    ptr = em.ptr(point.output)
    return (f"if (tm_max_s8({ptr}, {out.size}) >= exit_threshold) {{\n"
            f"        TM_LAYER({point.after});\n"
            f"        if (output != NULL) {{\n"
            f"            memcpy((int8_t *)output + {plan.output_offsets[point.output]}, {ptr}, {out.nbytes});\n"
            f"        }}\n"
            f"        return {k};\n    }}")


def describe_io(g: Graph, tid: int, name: str) -> dict:
    t = g.tensors[tid]
    return {
        "name": name, "tensor": t.name, "dtype": t.dtype, "shape": list(t.shape), "bytes": t.nbytes,
        "scale": t.scale if t.quant else None, "zero_point": t.zero_point if t.quant else None,
    }


def generate(g: Graph, plan: Plan, source: str, target: str = "ref", reference: str = "litert",
             headers: list[str] | tuple[str, ...] = ()) -> tuple[str, str, list[Layer], int]:
    """Returns (model.c, model.h, layers, flash bytes of constants). `target`: the kernel path whose variants
    the ops may call (their declarations in `headers`); `reference`: whose rounding to reproduce."""
    em = Emitter(g, plan, target, reference)
    checks = {p.after - 1: exit_check(g, plan, em, k, p) for k, p in enumerate(g.exits)}
    layers = []
    for i, op in enumerate(g.ops):
        em.op_index = i
        opdef = OPS.get(op.kind)
        dumps = tuple(f"TM_DUMP({i}, {tid}, {em.ptr(tid)}, {g.tensors[tid].nbytes});" for tid in op.outputs
                      if g.root(tid) in plan.buffers)  # a patch stage's intermediate tensors never exist whole
        if inplace.IN_STAGE in op.options:
            block = f"/* computed by layer {op.options[inplace.IN_STAGE]}'s patch stage */"
        elif op.options.get(inplace.BANDS):
            block = inplace.emit_bands(g, i, em, plan)
        else:
            block = ""
        call = "" if block else cmsis_nn.emit(op, g, em) if target == cmsis_nn.TARGET else variants.emit(op, g, em)
        layers.append(Layer(i, op.kind, c_comment(op.location), opdef.macs(op, g), call,
                            checks.get(i, ""), dumps, block))
    inputs = [{**describe_io(g, tid, c_comment(name)), "offset": plan.input_offsets[tid], "data": em.ptr(tid)}
              for tid, name in zip(g.inputs, g.input_names)]
    outs = [{**describe_io(g, tid, c_comment(name)), "offset": plan.output_offsets[tid], "data": em.ptr(tid)}
            for tid, name in zip(g.outputs, g.output_names)]
    arenas = [{"symbol": arena_symbol(r), "size": max(size, 16), "section": r}
              for r, size in ((("" if name == "ram" else name), size) for name, size in plan.regions.items())] or [
        {"symbol": "tm_arena", "size": max(plan.arena_size, 16), "section": ""}]
    ctx = {
        "source": c_comment(source), "target": target, "reference": reference, "headers": list(headers),
        "layers": layers, "decls": em.decls, "arena_size": plan.arena_size, "arenas": arenas,
        "inputs": inputs, "outs": outs, "input_size": plan.input_size,
        "output_size": plan.output_size, "total_macs": sum(layer.macs for layer in layers),
        "exits": [{"index": k, "output": g.outputs.index(p.output)} for k, p in enumerate(g.exits)],
    }
    model_c = require_plain_c(_TEMPLATES.get_template("model.c.j2").render(**ctx), "model.c")
    model_h = require_plain_c(_TEMPLATES.get_template("model.h.j2").render(**ctx), "model.h")
    return model_c, model_h, layers, em.const_bytes


# Names from a model are untrusted: in C they appear only inside comments, reduced to these characters
# (no '*' so no '*/', no '\\' so no line splice, no '?' so no trigraph, no quotes) and cut to a length.
_COMMENT_SAFE = frozenset(string.ascii_letters + string.digits + " _-+.,:;=#@!%^&|~<>()[]{}/$")
_COMMENT_MAX = 96


def c_comment(text: str) -> str:
    """`text` made safe to place between /* and */ (any other character becomes '_')."""
    safe = "".join(ch if ch in _COMMENT_SAFE else "_" for ch in str(text))
    return safe if len(safe) <= _COMMENT_MAX else safe[:_COMMENT_MAX - 3] + "..."


def c_string(text: str) -> str:
    """A C string literal holding `text`'s UTF-8 bytes; everything but [A-Za-z0-9 _.:-] as an octal escape."""
    plain = set(string.ascii_letters + string.digits + " _.:-")
    return '"' + "".join(chr(b) if chr(b) in plain else f"\\{b:03o}" for b in str(text).encode()) + '"'


def require_plain_c(source: str, name: str) -> str:
    """Defence in depth: generated C is printable ASCII, with no trigraph and no backslash-newline.
    Anything else means a model-controlled string slipped past the escaping above."""
    bad = next((i for i, ch in enumerate(source) if not (" " <= ch <= "~" or ch == "\n")), None)
    if bad is None:
        bad = next((m.start() for m in re.finditer(r"\?\?|\\\n", source)), None)
    if bad is not None:
        raise ToolchainError(f"internal error: generated {name} has an unsafe character sequence at offset {bad}",
                             "please report this model; nothing was written")
    return source


_TEMPLATES.filters["c_string"] = c_string
_TEMPLATES.filters["np_float"] = lambda v: repr(float(np.float32(v)))
