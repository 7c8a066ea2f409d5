"""The recipe's [tune] section: the search space, the metric, the fidelity (training epochs) and the scheduler's
settings; and a trial's configuration applied to the recipe (a derived recipe, checked like any other).

    [tune]
    metric = "val_accuracy"      # val_accuracy (final output) | val_exit_accuracy | val_loss | val_auc
    mode = "max"
    min_epochs = 1               # r_min: the first rung
    max_epochs = 9               # r_max: every trial's recipe trains (and schedules its learning rate) for this many
    reduction_factor = 3         # eta
    trials = 12
    seed = 0
    [tune.space]
    "train.lr" = {loguniform = [1e-4, 1e-2]}
    "train.batch_size" = {choice = [32, 64, 128]}
    "exit.loss_weight" = {uniform = [0.1, 0.6]}
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Any

from toolchain.errors import ToolchainError
from toolchain.fields import Count, NonNegative, Range, Seed
from toolchain.recipe import Recipe, recipe_section

METRICS = {"val_accuracy": "max", "val_exit_accuracy": "max", "val_loss": "min", "val_auc": "max"}
DISTRIBUTIONS = ("choice", "uniform", "loguniform", "randint")
# What a trial may change: "section.key" -> the kinds of values it takes (every other recipe key stays as written).
TUNABLE: dict[str, type] = {
    "train.lr": float, "train.batch_size": int, "train.optimizer": str, "train.lr_decay": float,
    "exit.loss_weight": float, "exit.threshold": float, "model.width": float,
}
SCHEDULERS = ("pasha", "asha", "fifo")


@recipe_section("tune")
@dataclass(frozen=True)
class TuneSection:
    metric: str = "val_accuracy"
    mode: str = ""  # max | min (default: the metric's)
    min_epochs: Count = 1
    max_epochs: Count = 9
    reduction_factor: Annotated[int, Range(low=2)] = 3
    trials: Count = 12
    seed: Seed = 0
    epsilon: NonNegative | None = None  # PASHA's ranking noise; default: estimated from the learning curves
    space: dict = field(default_factory=dict)  # "section.key" -> {choice | uniform | loguniform | randint = [...]}

    def validate(self, where: str) -> None:
        if self.metric not in METRICS:
            raise ToolchainError(f"{where}: unknown metric {self.metric!r}", f"metrics: {', '.join(METRICS)}")
        if self.mode not in ("", "max", "min"):
            raise ToolchainError(f"{where}: mode must be \"max\" or \"min\", got {self.mode!r}")
        if self.min_epochs >= self.max_epochs:
            raise ToolchainError(f"{where}: min_epochs {self.min_epochs} must be below max_epochs {self.max_epochs}")
        for key, spec in self.space.items():
            check_dimension(key, spec, f"{where} space")

    @property
    def direction(self) -> str:
        return self.mode or METRICS[self.metric]


def check_dimension(key: str, spec: Any, where: str) -> None:
    """One search-space entry: a tunable key and one distribution of values of its kind."""
    if key not in TUNABLE:
        raise ToolchainError(f"{where}: {key!r} cannot be tuned", f"tunable keys: {', '.join(TUNABLE)}")
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        raise ToolchainError(f"{where}: {key!r} needs one distribution, e.g. {{choice = [...]}}",
                             f"distributions: {', '.join(DISTRIBUTIONS)}")
    kind, values = next(iter(spec.items()))
    if not isinstance(values, list) or not values:
        raise ToolchainError(f"{where}: {key!r}: {kind} takes a non-empty list")
    expected = TUNABLE[key]
    if kind == "choice":
        for v in values:
            if not (isinstance(v, expected) or expected is float and isinstance(v, int)) or isinstance(v, bool):
                raise ToolchainError(f"{where}: {key!r}: choice {v!r} is not a {expected.__name__}")
        return
    if expected is str or len(values) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                      and math.isfinite(v) for v in values):
        raise ToolchainError(f"{where}: {key!r}: {kind} takes [low, high] numbers",
                             "strings are tuned with choice = [...]")
    low, high = values
    if not low < high or (kind == "loguniform" and low <= 0) or (kind == "randint" and expected is not int):
        raise ToolchainError(f"{where}: {key!r}: {kind} [{low}, {high}] is not a valid range"
                             + (" (randint is for integer keys)" if kind == "randint" else ""))


def ray_space(space: dict) -> dict:
    """The search space as Ray Tune distributions, keyed by the recipe key."""
    from ray import tune

    make = {"choice": lambda v: tune.choice(v), "uniform": lambda v: tune.uniform(*v),
            "loguniform": lambda v: tune.loguniform(*v), "randint": lambda v: tune.randint(v[0], v[1] + 1)}
    return {key: make[kind](values) for key, spec in space.items() for kind, values in spec.items()}


def derived_recipe(recipe: Recipe, config: dict) -> Recipe:
    """The recipe with a trial's values (`config`: "section.key" -> value) and [train] epochs = the tuning's maximum
    budget (the learning-rate schedule spans the whole budget); each change is checked like a written recipe."""
    section = recipe.section("tune")
    derived = recipe.replace("train", epochs=section.max_epochs)
    for key, value in sorted(config.items()):
        if key not in TUNABLE:
            raise ToolchainError(f"{key!r} cannot be tuned", f"tunable keys: {', '.join(TUNABLE)}")
        name, field_name = key.split(".")
        value = int(value) if TUNABLE[key] is int else float(value) if TUNABLE[key] is float else value
        if key == "train.lr" and derived.train.lr_schedule == "step":  # the steps keep their ratios to lr
            ratios = [v / derived.train.lr for v in derived.train.lr_values]
            derived = derived.replace("train", lr=value, lr_values=[value * r for r in ratios])
        else:
            derived = derived.replace(name, **{field_name: value})
    return derived
