"""The recipe's `[compress]` section: which stages run, in which order, with which options.

    [compress]
    stages = ["structured", "distill", "quantize"]   # any order; quantize, if present, last
    [compress.structured]
    macs_reduction = 0.3
    [compress.distill]
    teacher = "wider:2"
    [compress.quantize]
    method = "qat"

Each `[compress.<stage>]` table takes the fields of that stage's options dataclass
(`toolchain.compress.options`); they are checked when the recipe is parsed. Importing this module
registers the section (cheap: no TensorFlow).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from toolchain.compress.options import make_options
from toolchain.compress.stages import STAGES, StageSpec, parse_stages
from toolchain.errors import ToolchainError
from toolchain.recipe import Count, recipe_section


@recipe_section("compress")
@dataclass(frozen=True)
class CompressSection:
    stages: list[str] = field(default_factory=list)
    batch_size: Count | None = None  # default: [train] batch_size
    eval_samples: Count | None = None  # cap on the test samples an int8 model is scored on (all by default)
    prune: dict = field(default_factory=dict)
    structured: dict = field(default_factory=dict)
    distill: dict = field(default_factory=dict)
    quantize: dict = field(default_factory=dict)

    def validate(self, where: str) -> None:
        missing = [name for name in STAGES if not hasattr(self, name)]
        if missing:  # a stage registered without a table here
            raise ToolchainError(f"{where}: no options table for stage(s) {', '.join(missing)}")
        for name, kind in STAGES.items():  # every table, also of stages not in the list
            make_options(kind.options, dict(getattr(self, name)), f"{where} [{name}]")
        self.stage_specs(where)

    def stage_specs(self, where: str = "[compress]") -> list[StageSpec]:
        return parse_stages(self.stages, {name: getattr(self, name) for name in STAGES}, where)
