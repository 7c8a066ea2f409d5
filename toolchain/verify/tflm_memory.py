"""TFLM's RAM for a model, from its recording allocator: the figures ours is compared with.

tflite-micro's interpreter plans the model in one arena: its "head" holds the non-persistent tensors (the
activations, the inputs and outputs, and the kernels' scratch: what our planner places), its "tail" the
persistent data (per-channel quantization, tensor structs, node structs: what we keep in flash or do not need).
`RecordingMicroAllocator` reports both; the Python runtime prints them (`print_allocations`, MicroPrintf) on the
process's stderr, which is read here through a temporary file descriptor.
"""
from __future__ import annotations

import ctypes
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

_LINE = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")


@dataclass(frozen=True)
class TflmArena:
    head: int  # non-persistent arena: activations, inputs, outputs, scratch
    total: int  # what a TFLM user must allocate (head + tail)


def _c_stderr(fn) -> str:
    """What `fn()` prints on the process's file descriptor 2 (C code), as text."""
    libc = ctypes.CDLL(None)
    with tempfile.TemporaryFile() as capture:
        libc.fflush(None)
        saved = os.dup(2)
        try:
            os.dup2(capture.fileno(), 2)
            fn()
            libc.fflush(None)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        return capture.read().decode(errors="replace")


def tflm_arena(model_path: Path | str) -> tuple[TflmArena | None, str]:
    """TFLM's arena for the model, or (None, why not): tflite-micro not installed, or it cannot run the model."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        return None, "tflite-micro is not installed (pip install -e .[dev])"
    try:
        interpreter = runtime.Interpreter.from_file(str(model_path))
    except Exception as exc:  # noqa: BLE001 - any refusal of the interpreter is a reason, not a crash
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, f"tflite-micro cannot run this model ({why})"
    found = dict((k, int(v)) for k, v in _LINE.findall(_c_stderr(interpreter.print_allocations)))
    if "head" not in found or "total" not in found:
        return None, "tflite-micro printed no arena figures"
    return TflmArena(found["head"], found["total"]), ""


_REGISTER = re.compile(rb"Register_([A-Z0-9_]+)Ev")  # tflite::Register_CONV_2D(), as the C++ symbol spells it


def tflm_builtin_ops() -> tuple[frozenset[str] | None, str]:
    """The TFLite builtin operators the installed tflite-micro has kernels for (its `Register_<OP>` functions,
    read from the runtime library's symbols, kept where the name is a TFLite builtin), or (None, why not)."""
    try:
        from ai_edge_litert import schema_py_generated as schema
        from tflite_micro.python.tflite_micro import _runtime
    except ImportError:
        return None, "tflite-micro is not installed (pip install -e .[dev])"
    builtins = {k for k in vars(schema.BuiltinOperator) if not k.startswith("_")}
    found = {m.decode() for m in _REGISTER.findall(Path(_runtime.__file__).read_bytes())}
    return frozenset(found & builtins), ""
