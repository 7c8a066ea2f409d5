"""Options of the compression stages: one frozen dataclass per stage kind, its `[compress.<kind>]` table."""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass

from toolchain.errors import ToolchainError

QUANTIZE_METHODS = ("ptq", "qat")


@dataclass(frozen=True)
class PruneOptions:
    """Unstructured magnitude pruning to `sparsity` (fraction of zero kernel entries), then fine-tuning."""

    sparsity: float = 0.5
    epochs: int = 2
    lr: float = 5e-4

    def validate(self, where: str) -> None:
        if not 0.0 < self.sparsity < 1.0:
            raise ToolchainError(f"{where}: sparsity must be in (0, 1), got {self.sparsity}")
        _positive(where, epochs=self.epochs, lr=self.lr)


@dataclass(frozen=True)
class StructuredOptions:
    """Channel pruning removing `macs_reduction` of the MACs (or keeping `keep_fraction` of the
    channels of every prunable group, when given), then fine-tuning."""

    macs_reduction: float = 0.3
    keep_fraction: float | None = None
    round_to: int = 1  # kept channels per segment rounded to a multiple of this
    epochs: int = 3
    lr: float = 5e-4

    def validate(self, where: str) -> None:
        if not 0.0 < self.macs_reduction < 1.0:
            raise ToolchainError(f"{where}: macs_reduction must be in (0, 1), got {self.macs_reduction}")
        if self.keep_fraction is not None and not 0.0 < self.keep_fraction <= 1.0:
            raise ToolchainError(f"{where}: keep_fraction must be in (0, 1], got {self.keep_fraction}")
        _positive(where, round_to=self.round_to, epochs=self.epochs, lr=self.lr)


@dataclass(frozen=True)
class DistillOptions:
    """Distillation from `teacher`: "wider:F" (the input model's architecture F times as wide, trained
    first for `teacher_epochs`), "input" (the model given to the runner) or a saved .keras path."""

    teacher: str = "wider:2"
    teacher_epochs: int = 10
    teacher_lr: float = 1e-3
    alpha: float = 0.1
    temperature: float = 4.0
    epochs: int = 5
    lr: float = 1e-3

    def validate(self, where: str) -> None:
        if self.teacher.startswith("wider:"):
            try:
                factor = float(self.teacher.split(":", 1)[1])
            except ValueError:
                factor = 0.0
            if factor <= 0:
                raise ToolchainError(f"{where}: teacher {self.teacher!r}: the width factor must be a number > 0")
        if not 0.0 <= self.alpha <= 1.0:
            raise ToolchainError(f"{where}: alpha must be in [0, 1], got {self.alpha}")
        _positive(where, teacher_epochs=self.teacher_epochs, teacher_lr=self.teacher_lr,
                  temperature=self.temperature, epochs=self.epochs, lr=self.lr)


@dataclass(frozen=True)
class QuantizeOptions:
    """Full-int8: post-training ("ptq") or after quantization-aware training ("qat", `epochs` at `lr`)."""

    method: str = "ptq"
    epochs: int = 2
    lr: float = 1e-4

    def validate(self, where: str) -> None:
        if self.method not in QUANTIZE_METHODS:
            raise ToolchainError(f"{where}: method must be one of {', '.join(QUANTIZE_METHODS)}, got {self.method!r}")
        _positive(where, epochs=self.epochs, lr=self.lr)


def _positive(where: str, **values) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ToolchainError(f"{where}: {name} must be > 0, got {value}")


def make_options(cls: type, table: dict, where: str):
    """`cls(**table)` with unknown keys and wrong types reported as ToolchainErrors, then validated."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key, value in table.items():
        if key not in names:
            raise ToolchainError(f"{where}: unknown option {key!r}", f"options: {', '.join(names)}")
        table = {**table, key: _typed(value, hints[key], f"{where} {key}")}
    options = cls(**table)
    options.validate(where)
    return options


def _typed(value, hint, where: str):
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    for option in options:
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option in (int, str, bool) and type(value) is option:
            return value
    names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise ToolchainError(f"{where}: expected {names}, got {value!r}")
