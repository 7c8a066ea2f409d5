"""Kernel-path variants: the specialised code of one op on one path (dsp, mve).

`ops/<op>.py` describes the portable (`ref`) kernel of an op. A path's module `ops/<path>/<op>.py` registers a
`Variant` for the same op: `applies` says which shapes it covers (kernel variant per layer, chosen at compile
time), `scratch_bytes` mirrors its C `_get_buffer_size`, and `emit` writes its call (it may re-lay-out the
weights, fold the input zero point into the bias, and pass shape constants). The dispatch below asks the path's
folders in order (mve, then dsp) and falls back to the op's portable kernel.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from toolchain.compiler.ir import Graph, Op
from toolchain.compiler.ops.base import OPS, is_int16
from toolchain.compiler.targets import TARGETS

if TYPE_CHECKING:
    from toolchain.compiler.codegen import Emitter


# Op option set by the planner's second pass (planner.with_scratch_budgets): the arena bytes free while the op
# runs. A variant with a faster but scratch-hungrier form takes it only within this budget (absent: 0).
SCRATCH_BUDGET = "scratch_budget"


def scratch_budget(op: Op) -> int:
    """The op's SCRATCH_BUDGET (0 in the planner's first pass: the leanest form), capped to an int32 for C."""
    return min(int(op.options.get(SCRATCH_BUDGET, 0)), 2**31 - 1)


@dataclass(frozen=True)
class InPlace:
    """How a kernel's output may lie over its input 0 (which the op reads for the last time): it may start
    `before` bytes or more before the input (the kernel writes front to back, never over input bytes it still
    reads), or `after` bytes or more after it (back to front), or (`same`) exactly at the input's offset.
    None: not that way. Declared by a kernel variant's `in_place`, used by the memory planner, tested bit-exact
    with the buffers overlapping."""
    before: int | None = None
    after: int | None = None
    same: bool = False


class Variant:
    """One op's kernel variant(s) on one kernel path (the folder of its module)."""

    kind = ""  # the TFLite operator, as in OPS
    path = ""  # dsp or mve: firmware/kernels/<path>/

    def applies(self, op: Op, g: Graph) -> bool:
        """Whether this path's kernels cover this op (shape, options); else the next folder's are used."""
        raise NotImplementedError

    def kernel_for(self, op: Op, g: Graph) -> str:
        """The C function the call goes to."""
        raise NotImplementedError

    def scratch_bytes(self, op: Op, g: Graph) -> int:
        """Mirrors the C `<kernel>_get_buffer_size`; the planner places that many bytes in the arena."""
        return 0

    def emit(self, op: Op, g: Graph, em: "Emitter") -> str:
        raise NotImplementedError

    def in_place(self, op: Op, g: Graph) -> InPlace | None:
        """How the call `emit` writes (scratch budget included) may overlap its input 0; None: it may not."""
        return None


class SameArgsVariant(Variant):
    """A variant with the portable kernel's exact arguments: its call is the portable op's, renamed to `kernel`."""

    kernel = ""

    def kernel_for(self, op: Op, g: Graph) -> str:
        return self.kernel

    def emit(self, op: Op, g: Graph, em: "Emitter") -> str:
        portable = OPS.get(op.kind)
        call, name = portable.emit(op, g, em), portable.kernel_for(op, g)
        assert call.startswith(name + "("), call
        return self.kernel + call[len(name):]


VARIANTS: dict[tuple[str, str], Variant] = {}


def register_variant(kind: str, path: str):
    def decorator(cls: type[Variant]) -> type[Variant]:
        assert (kind, path) not in VARIANTS, f"two {path} variants of {kind}"
        assert kind in OPS, f"{path} variant of unknown op {kind}"
        v = cls()
        v.kind, v.path = kind, path
        VARIANTS[(kind, path)] = v
        return cls

    return decorator


def variant_for(op: Op, g: Graph, target: str) -> Variant | None:
    """The most specific variant of `target`'s folders that covers `op`; None: the portable kernel."""
    if is_int16(op, g) or any(g.tensors[t].dtype == "int16" for t in op.outputs):
        return None  # the paths' kernels are int8 ones; int16 activations run the portable kernels
    for folder in TARGETS[target]:
        v = VARIANTS.get((op.kind, folder))
        if v is not None and v.applies(op, g):
            return v
    return None


def kernel_for(op: Op, g: Graph, target: str = "ref") -> str:
    v = variant_for(op, g, target)
    return v.kernel_for(op, g) if v else OPS.get(op.kind).kernel_for(op, g)


def scratch_bytes(op: Op, g: Graph, target: str = "ref") -> int:
    v = variant_for(op, g, target)
    return v.scratch_bytes(op, g) if v else OPS.get(op.kind).scratch_bytes(op, g)


def in_place(op: Op, g: Graph, target: str = "ref") -> InPlace | None:
    v = variant_for(op, g, target)
    return v.in_place(op, g) if v else None


def emit(op: Op, g: Graph, em: "Emitter") -> str:
    v = variant_for(op, g, em.target)
    return v.emit(op, g, em) if v else OPS.get(op.kind).emit(op, g, em)


def _load_path_modules() -> None:
    """Importing a path's modules registers its variants (every module of ops/<path>/)."""
    for folder in sorted({f for folders in TARGETS.values() for f in folders} - {"ref"}):
        package = Path(__file__).parent / folder
        for module in pkgutil.iter_modules([str(package)]):
            importlib.import_module(f"toolchain.compiler.ops.{folder}.{module.name}")


_load_path_modules()
