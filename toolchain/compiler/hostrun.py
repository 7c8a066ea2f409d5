"""Run the generated C on the host: gcc builds a shared library, ctypes calls tm_model_run."""
from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np

from toolchain.compiler.model_plan import ModelPlan
from toolchain.errors import MissingToolError, ToolchainError

HOST_CFLAGS = ["-std=c99", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"]
HOST_TARGETS = ("ref", "dsp")  # kernel paths with a host build (dsp: tm_simd.h's C equivalents of its instructions)
_NP = {"int8": np.int8, "int16": np.int16, "float32": np.float32, "int32": np.int32}


def build_host_library(model_dir: Path, cc: str = "gcc") -> Path:
    """Compile model.c and its kernels into model_dir/host/libmodel-<hash>.so.

    The name carries the sources' hash: dlopen() of a path already loaded in this process returns the
    old library, so a recompiled model must get a new path."""
    model_dir = Path(model_dir)
    if shutil.which(cc) is None:
        raise MissingToolError(f"host C compiler '{cc}' not found", "apt-get install build-essential")
    sources = [model_dir / "model.c", *sorted((model_dir / "kernels").rglob("*.c"))]
    digest = hashlib.sha256()
    for p in sources + [model_dir / "model.h", *sorted((model_dir / "kernels").rglob("*.h"))]:
        digest.update(p.read_bytes())
    lib = model_dir / "host" / f"libmodel-{digest.hexdigest()[:16]}.so"
    if lib.exists():
        return lib
    lib.parent.mkdir(exist_ok=True)
    for old in lib.parent.glob("libmodel-*.so"):
        old.unlink()
    tmp = lib.with_suffix(".so.tmp")
    cmd = [cc, *HOST_CFLAGS, f"-I{model_dir}", f"-I{model_dir / 'kernels'}", *map(str, sources), "-o", str(tmp), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"host build of {model_dir} failed:\n{proc.stderr[-4000:]}")
    tmp.replace(lib)
    return lib


def pack_inputs(plan: ModelPlan, sample: list[np.ndarray]) -> bytes:
    """One sample's inputs laid out as the generated tm_model_run expects them."""
    size = max((i.offset + i.bytes for i in plan.inputs), default=0)
    size = (size + 3) // 4 * 4
    buf = bytearray(size)
    for spec, x in zip(plan.inputs, sample):
        raw = np.ascontiguousarray(x, dtype=np.dtype(spec.dtype)).tobytes()
        if len(raw) != spec.bytes:
            raise ToolchainError(f"input '{spec.name}' needs {list(spec.shape)} ({spec.bytes} bytes), "
                                 f"got {np.asarray(x).shape}")
        buf[spec.offset: spec.offset + len(raw)] = raw
    return bytes(buf)


def check_host_target(target: str) -> None:
    """The host runs the ref and dsp kernels; the others only on their core."""
    if target not in HOST_TARGETS:
        raise ToolchainError(f"the {target} kernels run only on their core, not on the host (it runs "
                             f"{' and '.join(HOST_TARGETS)})",
                             "check on the device: `tinyml run MODEL.tflite --board mps3-an547 --kernels mve`, or "
                             "compile with --kernels ref or dsp for a host check")


class HostModel:
    """The compiled model as a Python callable; inputs and outputs as in model_plan.json."""

    def __init__(self, model_dir: Path | str):
        model_dir = Path(model_dir)
        self.plan = ModelPlan.load(model_dir)
        check_host_target(self.plan.target)
        self._lib = ctypes.CDLL(str(build_host_library(model_dir)))
        self._run = self._lib.tm_model_run
        self._run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32]
        self._run.restype = ctypes.c_int32
        out_size = max((o.offset + o.bytes for o in self.plan.outputs), default=0)
        self._out = np.zeros(max(out_size, 1), np.uint8)

    def run(self, inputs: list[np.ndarray], exit_threshold: int = 0) -> tuple[list[np.ndarray], int]:
        """Returns (outputs, exit index)."""
        packed = np.frombuffer(pack_inputs(self.plan, inputs) or b"\0", np.uint8)
        status = self._run(packed.ctypes.data, self._out.ctypes.data, exit_threshold)
        if status < 0:
            raise ToolchainError(f"tm_model_run failed with status {status}")
        outs = [self._out[o.offset: o.offset + o.bytes].view(_NP[o.dtype]).reshape(o.shape).copy()
                for o in self.plan.outputs]
        return outs, status
