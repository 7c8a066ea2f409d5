"""The fuzz target: one input through the loader and the whole compile path.

Every input must end in a result or one clear error (a ToolchainError): anything else raised here is
a finding. An input that compiles is, when asked, built on the host and compared with LiteRT
BUILTIN_REF: its C must compile and its outputs must be bit-exact, or the model should have been
refused. `make fuzz` drives this with atheris; `tests/test_fuzz_corpus.py` replays the corpus of past
findings and a few seeds in the default test run.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from toolchain.compiler import compile_model
from toolchain.verify.check import check_against_reference
from toolchain.errors import ToolchainError


class Finding(AssertionError):
    """The compiler accepted a model and then produced wrong or uncompilable C."""


@dataclass(frozen=True)
class Outcome:
    kind: str  # "refused", "compiled", "bit-exact"
    detail: str = ""


def compile_one(data: bytes, check_samples: int = 0, early_exit: bool = False, target: str = "ref",
                bands: str = "auto") -> Outcome:
    """Compile `data` as a .tflite for kernel path `target` (ref or dsp: the paths the host runs) in a scratch
    directory (`bands`: compile_model's row-band choice); optionally check it against LiteRT."""
    work = Path(tempfile.mkdtemp(prefix="tinyml-fuzz-"))
    try:
        model = work / "model.tflite"
        model.write_bytes(data)
        try:
            compile_model(model, work / "out", early_exit=early_exit, target=target, bands=bands)
        except ToolchainError as exc:
            message = str(exc).replace(str(model), "model.tflite")  # one key per kind of refusal
            if "Traceback" in message:
                raise Finding(f"an error message carries a traceback: {message[:300]}") from exc
            lines = message.splitlines()
            first = lines[1].strip(" -") if lines[0].endswith(":") and len(lines) > 1 else lines[0]
            return Outcome("refused", first[:200])
        if not check_samples:
            return Outcome("compiled")
        try:
            report = check_against_reference(model, work / "out", samples=check_samples)
        except ToolchainError as exc:
            if "host build" in str(exc):
                raise Finding(f"accepted model gave C that does not compile: {exc}") from exc
            return Outcome("refused", str(exc).replace(str(model), "model.tflite").splitlines()[0][:200])
        if not report.ok:
            raise Finding(f"accepted model is not bit-exact: {report.summary()[:500]}")
        return Outcome("bit-exact")
    finally:
        shutil.rmtree(work, ignore_errors=True)
