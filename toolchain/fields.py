"""Typed fields: the allowed range of a numeric field (`Annotated[int, Range(low=1)]`) and the checker that
converts a TOML value to a field's type, so every table (recipe sections, dataset and stage options) is
checked the same way."""
from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from toolchain.errors import ToolchainError


@dataclass(frozen=True)
class Range:
    """The allowed values of a numeric field, written `Annotated[int, Range(low=1)]`; checked when parsed.

    Every float must also be finite (TOML allows nan and inf)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is excluded
    high_open: bool = False
    note: str = ""  # what the values mean, added to the error message

    def contains(self, value: float) -> bool:
        return ((self.low is None or (value > self.low if self.low_open else value >= self.low))
                and (self.high is None or (value < self.high if self.high_open else value <= self.high)))

    def __str__(self) -> str:
        return self.interval() + (f" ({self.note})" if self.note else "")

    def interval(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


# The ranges fields share (use as the field's type).
Count = Annotated[int, Range(low=1)]  # epochs, sizes, numbers of samples
NonNegativeInt = Annotated[int, Range(low=0)]
Seed = Annotated[int, Range(low=0)]
Positive = Annotated[float, Range(low=0, low_open=True)]  # learning rates, timeouts
NonNegative = Annotated[float, Range(low=0)]
Fraction = Annotated[float, Range(low=0, high=1)]  # probabilities, thresholds, shares


def check_value(value, hint, where: str):
    """`value` converted to `hint` (int -> float is allowed), or a ToolchainError naming `where` and what was expected.

    Floats must be finite; `Annotated[T, Range(...)]` also checks the range (elementwise inside lists)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        bounds = [a for a in args[1:] if isinstance(a, Range)]
        if isinstance(value, float) and not math.isfinite(value):
            raise ToolchainError(f"{where} must be a finite number {' and '.join(map(str, bounds))}, got {value!r}")
        value = check_value(value, args[0], where)
        for bound in bounds:
            if not bound.contains(value):
                raise ToolchainError(f"{where} must be {bound}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return check_value(value, option, where)
            except ToolchainError as exc:
                errors.append(exc)
        raise errors[0]
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ToolchainError(f"{where}: expected a list, got {value!r}")
        items = args[:1] * len(value) if origin is list or (len(args) == 2 and args[1] is Ellipsis) else args
        if args and len(items) != len(value):
            raise ToolchainError(f"{where}: expected a list of {len(items)} values, got {value!r}")
        checked = [check_value(v, h, f"{where}[{i}]") for i, (v, h) in enumerate(zip(value, items))] if args \
            else list(value)
        return checked if origin is list else tuple(checked)
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise ToolchainError(f"{where}: expected a table, got {value!r}")
        return dict(value)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ToolchainError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint in (str, bool) and isinstance(value, hint):
        return value
    if hint is Path and isinstance(value, (str, Path)):
        return Path(value)
    name = getattr(hint, "__name__", str(hint))
    raise ToolchainError(f"{where}: expected {name}, got {value!r}")
