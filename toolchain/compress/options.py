"""Options of the compression stages: one frozen dataclass per stage kind, its `[compress.<kind>]` table."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Annotated

from toolchain.errors import ToolchainError
from toolchain.fields import Count, Fraction, Positive, Range, check_value

OpenFraction = Annotated[float, Range(0, 1, low_open=True, high_open=True)]

QUANTIZE_METHODS = ("ptq", "qat")


@dataclass(frozen=True)
class PruneOptions:
    """Unstructured magnitude pruning to `sparsity` (fraction of zero kernel entries), then fine-tuning."""

    sparsity: OpenFraction = 0.5
    epochs: Count = 2
    lr: Positive = 5e-4


@dataclass(frozen=True)
class StructuredOptions:
    """Channel pruning removing `macs_reduction` of the MACs (or keeping `keep_fraction` of the
    channels of every prunable group, when given), then fine-tuning."""

    macs_reduction: OpenFraction = 0.3
    keep_fraction: Annotated[float, Range(0, 1, low_open=True)] | None = None
    round_to: Count = 1  # kept channels per segment rounded to a multiple of this
    epochs: Count = 3
    lr: Positive = 5e-4


@dataclass(frozen=True)
class DistillOptions:
    """Distillation from `teacher`: "wider:F" (the input model's architecture F times as wide, trained
    first for `teacher_epochs`), "input" (the model given to the runner) or a saved .keras path."""

    teacher: str = "wider:2"
    teacher_epochs: Count = 10
    teacher_lr: Positive = 1e-3
    alpha: Fraction = 0.1
    temperature: Positive = 4.0
    epochs: Count = 5
    lr: Positive = 1e-3

    def validate(self, where: str) -> None:
        if self.teacher.startswith("wider:"):
            try:
                factor = float(self.teacher.split(":", 1)[1])
            except ValueError:
                factor = 0.0
            if not factor > 0 or factor == float("inf"):
                raise ToolchainError(f"{where}: teacher {self.teacher!r}: the width factor must be a finite number > 0")


@dataclass(frozen=True)
class QuantizeOptions:
    """Full-int8: post-training ("ptq") or after quantization-aware training ("qat", `epochs` at `lr`)."""

    method: str = "ptq"
    epochs: Count = 2
    lr: Positive = 1e-4

    def validate(self, where: str) -> None:
        if self.method not in QUANTIZE_METHODS:
            raise ToolchainError(f"{where}: method must be one of {', '.join(QUANTIZE_METHODS)}, got {self.method!r}")


def make_options(cls: type, table: dict, where: str):
    """`cls(**table)` with unknown keys, wrong types and values out of range reported as ToolchainErrors (the
    recipe's checks: toolchain.fields.check_value), then validated."""
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]
    for key, value in table.items():
        if key not in names:
            raise ToolchainError(f"{where}: unknown option {key!r}", f"options: {', '.join(names)}")
        table = {**table, key: check_value(value, hints[key], f"{where} {key}")}
    options = cls(**table)
    validate = getattr(options, "validate", None)
    if validate is not None:
        validate(where)
    return options
