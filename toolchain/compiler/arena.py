"""The arena the compiler plans for a model, as a figure other stages can be handed (e.g. compression's
stage table), without writing the C anywhere that lasts."""
from __future__ import annotations

import tempfile
from pathlib import Path

from toolchain.compiler.driver import compile_model
from toolchain.errors import ToolchainError


def arena_bytes(tflite_path: Path) -> tuple[int | None, str | None]:
    """The compiler's planned arena for the model, or (None, why not)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            return compile_model(tflite_path, Path(tmp) / "c").arena_bytes, None
        except ToolchainError as exc:
            return None, exc.message.splitlines()[0]
