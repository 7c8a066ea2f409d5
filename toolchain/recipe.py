"""The recipe: one TOML file (`models/<name>.toml`) parsed once into typed, frozen dataclasses.

Each `[section]` is a dataclass registered with `@recipe_section("name")`; the parser accepts exactly
the registered sections and, inside each, exactly the dataclass's fields (with their types). A later
stage adds its own section (`[compress]`, `[target]`) by registering one more dataclass; nothing
here changes. Free-form tables are typed `dict` (e.g. `[dataset.options]`, passed to the loader).
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable, TypeVar

from toolchain.errors import ToolchainError
from toolchain.fields import Count, Fraction, NonNegative, NonNegativeInt, Positive, Range, Seed, check_value
from toolchain.registry import Registry

S = TypeVar("S")

SECTIONS: Registry[type] = Registry("recipe section")


def recipe_section(name: str) -> Callable[[type[S]], type[S]]:
    """Register the decorated dataclass as section `[name]`; it may define `validate(self, where)`."""
    return SECTIONS.register(name)


EXIT_STYLES = ("none", "trecx", "sdn", "branchy")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
LR_SCHEDULES = ("constant", "step", "exponential")


@recipe_section("model")
@dataclass(frozen=True)
class ModelSection:
    name: str  # a zoo model: kws, ic, vww, ad
    input_shape: list[Count] | None = None  # default: the dataset's
    num_classes: Annotated[int, Range(low=2)] | None = None  # default: the dataset's
    # every channel group (the zoo's, the exit's) this many times as wide; outputs and the input keep their size
    width: Annotated[float, Range(0, 4, low_open=True, note="a channel multiplier")] = 1.0

    def validate(self, where: str) -> None:
        from toolchain import zoo

        zoo.get(self.name)
        if self.input_shape is not None and not self.input_shape:
            raise ToolchainError(f"{where}: input_shape must be a non-empty list of positive integers")


@recipe_section("exit")
@dataclass(frozen=True)
class ExitSection:
    style: str = "none"  # none | trecx | sdn | branchy
    ev_assist: bool = False  # T-RecX early-view assistance (trecx only)
    loss_weight: NonNegative | None = None  # weight of the exit's loss; default: the style's (see zoo.exits)
    threshold: Fraction = 0.9  # leave at the exit when its max softmax >= threshold

    def validate(self, where: str) -> None:
        if self.style not in EXIT_STYLES:
            raise ToolchainError(f"{where}: unknown style {self.style!r}", f"styles: {', '.join(EXIT_STYLES)}")
        if self.ev_assist and self.style != "trecx":
            raise ToolchainError(f"{where}: ev_assist is part of T-RecX", "set style = \"trecx\" or ev_assist = false")


@recipe_section("dataset")
@dataclass(frozen=True)
class DatasetSection:
    name: str
    root: str | None = None  # where a real dataset lives (generated ones ignore it)
    seed: Seed = 0
    options: dict = field(default_factory=dict)  # passed to the loader as keyword arguments

    def validate(self, where: str) -> None:
        from toolchain.data import DATASETS, check_options

        # An unknown name is reported when the dataset is loaded (a test may register its own source later).
        if self.name in DATASETS:
            check_options(self.name, self.options, f"{where} options", check_value)


@recipe_section("train")
@dataclass(frozen=True)
class TrainSection:
    epochs: Count = 10
    batch_size: Count = 100
    optimizer: str = "adam"
    lr: Positive = 1e-3  # the first learning rate
    lr_schedule: str = "constant"  # constant | step | exponential
    # step: lr_values[i] from fraction lr_boundaries[i-1] of the run on (fractions keep the shape
    # when --epochs changes); lr_values[0] must equal lr.
    lr_boundaries: list[Annotated[float, Range(0, 1, True, True, "fractions of the run")]] = field(default_factory=list)
    lr_values: list[Positive] = field(default_factory=list)
    lr_decay: Annotated[float, Range(0, 1, low_open=True)] = 1.0  # exponential: lr * lr_decay ** epoch
    seed: Seed = 0
    ev_assist_fraction: Fraction = 0.8  # copy the exit's depthwise weights during this share of the epochs
    # Re-estimate BatchNorm statistics on this many training samples after each epoch (0: keep the
    # moving averages only); see toolchain.train.callbacks.PreciseBatchNorm.
    bn_recalibration_samples: NonNegativeInt = 1000

    def validate(self, where: str) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ToolchainError(f"{where}: unknown optimizer {self.optimizer!r}",
                                 f"optimizers: {', '.join(OPTIMIZERS)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ToolchainError(f"{where}: unknown lr_schedule {self.lr_schedule!r}",
                                 f"schedules: {', '.join(LR_SCHEDULES)}")
        if self.lr_schedule == "step":
            b, v = self.lr_boundaries, self.lr_values
            if len(v) != len(b) + 1 or not v or v[0] != self.lr:
                raise ToolchainError(f"{where}: a step schedule needs lr_values = [lr, ...] with one value more "
                                     f"than lr_boundaries (got {len(v)} values, {len(b)} boundaries)")
            if list(b) != sorted(b):
                raise ToolchainError(f"{where}: lr_boundaries are increasing fractions of the run in (0, 1), got {b}")
        elif self.lr_boundaries or self.lr_values:
            raise ToolchainError(f"{where}: lr_boundaries/lr_values need lr_schedule = \"step\"")

    def lr_at(self, epoch: int) -> float:
        """Learning rate of 0-based `epoch`."""
        if self.lr_schedule == "exponential":
            return self.lr * self.lr_decay ** epoch
        if self.lr_schedule == "step":
            passed = sum(epoch >= round(b * self.epochs) for b in self.lr_boundaries)
            return self.lr_values[passed]
        return self.lr


DEFAULT_THRESHOLDS = [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99]


@recipe_section("evaluate")
@dataclass(frozen=True)
class EvaluateSection:
    thresholds: list[Fraction] = field(default_factory=lambda: list(DEFAULT_THRESHOLDS))

    def validate(self, where: str) -> None:
        if not self.thresholds:
            raise ToolchainError(f"{where}: thresholds must be a non-empty list of values in [0, 1]")


REQUIRED_SECTIONS = ("model", "dataset")

@dataclass(frozen=True)
class Recipe:
    name: str  # the file's stem, e.g. "kws"
    sections: dict[str, Any]  # section name -> its dataclass instance (every registered section)
    path: Path | None = None

    def section(self, name: str) -> Any:
        return self.sections[name]

    @property
    def model(self) -> ModelSection:
        return self.sections["model"]

    @property
    def exit(self) -> ExitSection:
        return self.sections["exit"]

    @property
    def dataset(self) -> DatasetSection:
        return self.sections["dataset"]

    @property
    def train(self) -> TrainSection:
        return self.sections["train"]

    @property
    def evaluate(self) -> EvaluateSection:
        return self.sections["evaluate"]

    def replace(self, section: str, **changes) -> "Recipe":
        """A copy with fields of one section changed (types, ranges and validate() checked again), e.g.
        replace("train", epochs=3)."""
        current = self.sections[section]
        hints = typing.get_type_hints(type(current), include_extras=True)
        changes = {k: check_value(v, hints[k], f"[{section}] {k}") if k in hints else v for k, v in changes.items()}
        updated = dataclasses.replace(current, **changes)
        _validate(updated, f"[{section}]")
        return dataclasses.replace(self, sections={**self.sections, section: updated})

    def to_dict(self) -> dict:
        return {name: dataclasses.asdict(value) for name, value in self.sections.items()}


def load_recipe(path: Path | str) -> Recipe:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ToolchainError(f"cannot read recipe {path}: {exc.strerror}",
                             "recipes live in models/<name>.toml") from exc
    except UnicodeDecodeError as exc:
        raise ToolchainError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.object[exc.start:exc.start + 1]!r})",
                             "TOML files are UTF-8; re-save the recipe as UTF-8") from exc
    return parse_recipe(text, name=path.stem, path=path)


def parse_recipe(text: str, *, name: str = "recipe", path: Path | None = None) -> Recipe:
    where = str(path) if path else name
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ToolchainError(f"{where}: not valid TOML: {exc}") from exc
    return recipe_from_dict(table, name=name, path=path)


# Modules of later stages that register their own sections; imported before any recipe is parsed.
STAGE_SECTION_MODULES = ("toolchain.compress.recipe_section", "toolchain.pipeline.target", "toolchain.tune.space")


def recipe_from_dict(table: dict, *, name: str = "recipe", path: Path | None = None) -> Recipe:
    for module in STAGE_SECTION_MODULES:
        importlib.import_module(module)
    where = str(path) if path else name
    allowed = list(SECTIONS)
    unknown = [key for key in table if key not in SECTIONS]
    if unknown:
        raise ToolchainError(f"{where}: unknown section [{unknown[0]}]", f"sections: {', '.join(allowed)}")
    for key in REQUIRED_SECTIONS:
        if key not in table:
            raise ToolchainError(f"{where}: missing section [{key}]")
    sections = {}
    for key, cls in SECTIONS.items():
        value = table.get(key, {})
        if not isinstance(value, dict):
            raise ToolchainError(f"{where}: {key} must be a [{key}] table")
        sections[key] = _build(cls, value, f"{where} [{key}]")
    for check in RECIPE_CHECKS:
        check(sections, where)
    return Recipe(name=name, sections=sections, path=path)


def _check_exit_fits_model(sections: dict, where: str) -> None:
    from toolchain.zoo.exits import check_exit

    model, exit_ = sections["model"], sections["exit"]
    try:
        check_exit(model.name, exit_.style, exit_.ev_assist)
    except ToolchainError as exc:
        raise ToolchainError(f"{where} [exit]: {exc.message}", exc.hint) from exc


# Checks that involve several sections, run after each section parsed and validated on its own.
RECIPE_CHECKS: list[Callable[[dict, str], None]] = [_check_exit_fits_model]


def _build(cls: type, table: dict, where: str):
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in table:
        if key not in fields:
            raise ToolchainError(f"{where}: unknown key {key!r}", f"keys: {', '.join(fields)}")
    values = {}
    for fname, f in fields.items():
        if fname in table:
            values[fname] = check_value(table[fname], hints[fname], f"{where} {fname}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ToolchainError(f"{where}: missing key {fname!r}")
    instance = cls(**values)
    _validate(instance, where)
    return instance


def _validate(instance, where: str) -> None:
    validate = getattr(instance, "validate", None)
    if validate is not None:
        validate(where)


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None) + "}"
    raise TypeError(f"no TOML form for {value!r}")


def recipe_to_toml(recipe: Recipe, header: str = "") -> str:
    """The recipe as a TOML file `load_recipe` reads back to the same recipe: every section with every key (defaults
    included; a None key left out, as TOML has no null), sub-tables for the free-form tables."""
    lines = [f"# {line}" for line in header.splitlines()]
    for name, table in recipe.to_dict().items():
        scalars = {k: v for k, v in table.items() if v is not None and not isinstance(v, dict)}
        tables = {k: v for k, v in table.items() if isinstance(v, dict)}
        lines += ["", f"[{name}]", *(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in scalars.items())]
        for sub, values in tables.items():
            lines += ["", f"[{name}.{_toml_key(sub)}]",
                      *(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in values.items() if v is not None)]
    return "\n".join(lines).lstrip("\n") + "\n"
