"""The stage runner: `compress(model, dataset, stages, out_dir)` applies prune / structured / distill /
quantize steps in the given order and measures every stage.

Each stage is registered in STAGES with an options dataclass (its recipe table, `[compress.<kind>]`).
Every stage directory `out_dir/<i>-<kind>/` (0-float is the input model) is written whole or not at
all and holds `model.keras` (float stages), `model.tflite` (int8: the stage's own for `quantize`, a
PTQ of the float model otherwise, for its size and arena) and `stage.json` (its row of the table).

Measured per stage: accuracy (or AUC) per output, on the float model or, for `quantize`, on the int8
model run by the `int8_runner` the caller hands in (LiteRT BUILTIN_REF: `verify.int8.predict_tflite`);
parameters after BatchNorm folding (`zoo.folded_param_count`); non-zero parameters (the same minus the zero
kernel entries); MACs (`zoo.count_macs`); the int8 .tflite's bytes; the arena planned for it by the
`arena_estimator` the caller hands in (the compiler's: `compiler.arena.arena_bytes`). Compression does not
import the compiler or the verifier: it is given these two functions.
"""
from __future__ import annotations

import dataclasses
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from toolchain.compress.options import (
    DistillOptions,
    PruneOptions,
    QuantizeOptions,
    StructuredOptions,
    make_options,
)
from toolchain.errors import ToolchainError
from toolchain.fsutil import atomic_dir, write_json
from toolchain.registry import Registry


# (tflite path) -> (arena bytes, or None and why not)
ArenaEstimator = Callable[[Path], tuple[int | None, str | None]]
# (int8 .tflite as path or bytes, float inputs) -> dequantized outputs by signature name
Int8Runner = Callable[[bytes | Path, np.ndarray], dict[str, np.ndarray]]


@dataclass(frozen=True)
class StageContext:
    dataset: Any
    original: Any  # the model given to `compress` (teachers "input" and "wider:F" start from it)
    calibration: Any  # representative inputs for PTQ
    batch_size: int
    seed: int
    eval_samples: int | None
    progress: Callable[[str], None]
    exit_weight: float  # loss weight of early exits while fine-tuning (the final output: 1.0)
    arena_estimator: ArenaEstimator | None = None
    int8_runner: Int8Runner | None = None
    _last_int8: list = field(default_factory=list)  # [(model, flatbuffer)] of the latest PTQ

    def int8(self, model) -> bytes:
        """Full-int8 PTQ of a float model; the latest result is reused (a `ptq` stage quantizes exactly the
        model the stage before it measured)."""
        from toolchain.compress.quantize import to_int8

        if self._last_int8 and self._last_int8[0][0] is model:
            return self._last_int8[0][1]
        flatbuffer = to_int8(model, self.calibration)
        self._last_int8[:] = [(model, flatbuffer)]
        return flatbuffer


@dataclass
class StageOutput:
    model: Any  # the float Keras model after the stage (for `quantize`: the model it quantized)
    info: dict = field(default_factory=dict)
    tflite: bytes | None = None  # the stage's own int8 model (quantize), else PTQ'd for measuring
    scores: dict[str, float] | None = None  # when the stage's accuracy is not the float model's
    extra_files: dict[str, Any] = field(default_factory=dict)  # name -> Keras model to save beside


@dataclass(frozen=True)
class StageKind:
    name: str
    options: type
    run: Callable[[Any, StageContext, Any], StageOutput]
    last: bool = False  # must be the last stage (its output is int8, not a Keras model)


STAGES: Registry[StageKind] = Registry("compression stage")


def stage(name: str, options: type, *, last: bool = False):
    def decorator(run):
        STAGES.register(name)(StageKind(name, options, run, last))
        return run

    return decorator


@dataclass(frozen=True)
class StageSpec:
    kind: str
    options: dict = field(default_factory=dict)


def parse_stages(stages: str | list[str], options: dict[str, dict] | None = None,
                 where: str = "compress") -> list[StageSpec]:
    """Stage specs from "prune,quantize" (or a list of names) and per-kind option tables, checked."""
    names = [s.strip() for s in stages.split(",")] if isinstance(stages, str) else list(stages)
    names = [n for n in names if n]
    specs = []
    for i, name in enumerate(names):
        kind = STAGES.get(name)
        if kind is None:
            raise ToolchainError(f"{where}: unknown stage {name!r}", f"stages: {', '.join(STAGES)}")
        if kind.last and i != len(names) - 1:
            raise ToolchainError(f"{where}: stage {name!r} must be the last one (it leaves an int8 model)")
        table = dict((options or {}).get(name, {}))
        make_options(kind.options, table, f"{where} [{name}]")
        specs.append(StageSpec(name, table))
    return specs


# ---- the stages ------------------------------------------------------------------------------------

@stage("prune", PruneOptions)
def _prune(model, ctx: StageContext, o: PruneOptions) -> StageOutput:
    from toolchain.compress.magnitude import prune_magnitude
    from toolchain.compress.training import recalibrate_batchnorm

    pruned, report = prune_magnitude(model, ctx.dataset, sparsity=o.sparsity, epochs=o.epochs,
                                     batch_size=ctx.batch_size, lr=o.lr, seed=ctx.seed, exit_weight=ctx.exit_weight)
    recalibrate_batchnorm(pruned, ctx.dataset, seed=ctx.seed)
    return StageOutput(pruned, {"target_sparsity": report.target, "sparsity": round(report.sparsity, 4),
                                "pruned_layers": len(report.layers)})


@stage("structured", StructuredOptions)
def _structured(model, ctx: StageContext, o: StructuredOptions) -> StageOutput:
    from toolchain.compress.channels import prune_channels
    from toolchain.compress.training import fit, recalibrate_batchnorm

    if o.keep_fraction is not None:
        smaller, report = prune_channels(model, keep_fraction=o.keep_fraction, round_to=o.round_to)
    else:
        smaller, report = prune_channels(model, macs_reduction=o.macs_reduction, round_to=o.round_to)
    recalibrate_batchnorm(smaller, ctx.dataset, seed=ctx.seed)
    fit(smaller, ctx.dataset, epochs=o.epochs, batch_size=ctx.batch_size, lr=o.lr, seed=ctx.seed,
        exit_weight=ctx.exit_weight)
    recalibrate_batchnorm(smaller, ctx.dataset, seed=ctx.seed)
    changed = {k: v for k, v in report.channels.items() if v[0] != v[1]}
    return StageOutput(smaller, {"keep_fraction": round(report.keep_fraction, 4),
                                 "macs_reduction": round(report.macs_reduction, 4),
                                 "channels": {k: f"{a}->{b}" for k, (a, b) in changed.items()}})


def resolve_teacher(spec: str, ctx: StageContext, o: DistillOptions):
    """(teacher model, whether it was trained here)."""
    from toolchain.compress.channels import widen
    from toolchain.compress.graph import load_keras
    from toolchain.compress.training import fit, recalibrate_batchnorm

    if spec == "input":
        return ctx.original, False
    if spec.startswith("wider:"):
        teacher = widen(ctx.original, float(spec.split(":", 1)[1]))
        ctx.progress(f"training the teacher {teacher.name} ({teacher.count_params():,} parameters, "
                     f"{o.teacher_epochs} epochs)")
        fit(teacher, ctx.dataset, epochs=o.teacher_epochs, batch_size=ctx.batch_size, lr=o.teacher_lr,
            seed=ctx.seed, exit_weight=ctx.exit_weight)
        recalibrate_batchnorm(teacher, ctx.dataset, seed=ctx.seed)
        return teacher, True
    return load_keras(spec), False


@stage("distill", DistillOptions)
def _distill(model, ctx: StageContext, o: DistillOptions) -> StageOutput:
    from toolchain.compress.distill import distill
    from toolchain.compress.graph import final_output
    from toolchain.compress.training import recalibrate_batchnorm, scores

    teacher, trained = resolve_teacher(o.teacher, ctx, o)
    teacher_scores = scores(teacher, ctx.dataset)
    student = distill(model, teacher, ctx.dataset, alpha=o.alpha, temperature=o.temperature, epochs=o.epochs,
                      batch_size=ctx.batch_size, lr=o.lr, seed=ctx.seed, exit_weight=ctx.exit_weight)
    recalibrate_batchnorm(student, ctx.dataset, seed=ctx.seed)
    info = {"teacher": o.teacher, "teacher_params": int(teacher.count_params()),
            "teacher_score": round(teacher_scores[final_output(teacher)], 4)}
    return StageOutput(student, info, extra_files={"teacher.keras": teacher} if trained else {})


@stage("quantize", QuantizeOptions, last=True)
def _quantize(model, ctx: StageContext, o: QuantizeOptions) -> StageOutput:
    from toolchain.compress import quantize
    from toolchain.compress.training import scores, tflite_scores

    if o.method == "qat":
        qat = quantize.quantization_aware_training(model, ctx.dataset, epochs=o.epochs, batch_size=ctx.batch_size,
                                                   lr=o.lr, seed=ctx.seed, exit_weight=ctx.exit_weight)
        flatbuffer = quantize.to_int8(qat, ctx.calibration)
    else:
        flatbuffer = ctx.int8(model)
    float_scores = scores(model, ctx.dataset, limit=ctx.eval_samples)
    int8_scores = tflite_scores(flatbuffer, ctx.dataset, limit=ctx.eval_samples, run=ctx.int8_runner)
    change = {name: round(int8_scores[name] - float_scores[name], 4) for name in int8_scores}
    info = {"method": o.method, "float_score": {k: round(v, 4) for k, v in float_scores.items()},
            "int8_minus_float": change}
    return StageOutput(model, info, tflite=flatbuffer, scores=int8_scores)


# ---- running and measuring -------------------------------------------------------------------------

@dataclass
class CompressionStep:
    """One step of `compress()` as run and measured: a row of the stage table, saved as its `stage.json`."""

    index: int
    stage: str
    directory: Path
    metric: str  # "accuracy" or "auc"
    scores: dict[str, float]  # per output; the int8 model's for `quantize`
    int8: bool  # scores are of the int8 model
    params: int
    nonzero_params: int
    macs: int
    tflite_bytes: int
    arena_bytes: int | None
    seconds: float
    info: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "directory": str(self.directory)}


def _measure(index: int, name: str, out: StageOutput, ctx: StageContext, stage_dir: Path, seconds: float,
             final_dir: Path) -> CompressionStep:
    from toolchain import zoo
    from toolchain.compress.graph import save_keras
    from toolchain.compress.magnitude import zero_weights
    from toolchain.compress.training import metric_name, scores

    if out.tflite is None:
        save_keras(out.model, stage_dir / "model.keras")
        flatbuffer = ctx.int8(out.model)
    else:
        flatbuffer = out.tflite
    for file_name, extra in out.extra_files.items():
        save_keras(extra, stage_dir / file_name)
    (stage_dir / "model.tflite").write_bytes(flatbuffer)
    arena, why = ctx.arena_estimator(stage_dir / "model.tflite") if ctx.arena_estimator else (None, "not measured")
    info = dict(out.info)
    if why:
        info["arena"] = why
    params = zoo.folded_param_count(out.model)
    result = CompressionStep(
        index=index, stage=name, directory=final_dir, metric=metric_name(ctx.dataset),
        scores={k: round(v, 4) for k, v in (out.scores or scores(out.model, ctx.dataset)).items()},
        int8=out.scores is not None, params=params, nonzero_params=params - zero_weights(out.model),
        macs=zoo.count_macs(out.model), tflite_bytes=len(flatbuffer), arena_bytes=arena,
        seconds=round(seconds, 1), info=info)
    write_json(stage_dir / "stage.json", result.to_dict())
    return result


def compress(model, dataset, stages: list[StageSpec], out_dir: Path | str, *, batch_size: int = 100, seed: int = 0,
             eval_samples: int | None = None, calibration_samples: int = 100, exit_weight: float | None = None,
             arena_estimator: ArenaEstimator | None = None, int8_runner: Int8Runner | None = None,
             progress: Callable[[str], None] = print) -> list[CompressionStep]:
    """Run `stages` in order on a copy of `model`; returns the table rows (row 0: the input model).

    `eval_samples` caps the test samples the int8 model is scored on (LiteRT's reference kernels run
    one sample at a time); float models are scored on the whole test split. `exit_weight` weighs the
    early exits' losses while fine-tuning (default `training.EXIT_LOSS_WEIGHT`; pass the recipe's).
    `arena_estimator` gives each stage's arena (None: not measured); `int8_runner` runs int8 models for the
    `quantize` stage's scores (needed when that stage is given).
    """
    from toolchain.compress.graph import copy_model
    from toolchain.compress.table import format_rows
    from toolchain.compress.training import EXIT_LOSS_WEIGHT
    from toolchain.compress.training import calibration_samples as pick_calibration

    out_dir = Path(out_dir)
    specs = parse_stages([s.kind for s in stages], {s.kind: s.options for s in stages})
    if int8_runner is None and any(spec.kind == "quantize" for spec in specs):
        raise ToolchainError("the quantize stage scores the int8 model but no int8_runner was given",
                             "pass int8_runner=toolchain.verify.int8.predict_tflite")
    ctx = StageContext(dataset, model, pick_calibration(dataset, calibration_samples, seed), batch_size, seed,
                       eval_samples, progress, EXIT_LOSS_WEIGHT if exit_weight is None else exit_weight,
                       arena_estimator, int8_runner)
    results: list[CompressionStep] = []
    current = copy_model(model)
    plan = [("float", None)] + [(spec.kind, spec) for spec in specs]
    for index, (name, spec) in enumerate(plan):
        final_dir = out_dir / f"{index}-{name}"
        progress(f"[{index}/{len(specs)}] {name}")
        start = time.monotonic()
        if spec is None:
            out = StageOutput(current)
        else:
            kind = STAGES.get(name)
            out = kind.run(current, ctx, make_options(kind.options, dict(spec.options), f"[compress.{name}]"))
        with atomic_dir(final_dir) as staging:
            results.append(_measure(index, name, out, ctx, staging, time.monotonic() - start, final_dir))
        current = out.model
        progress(format_rows(results[-1:], header=False))
    write_json(out_dir / "stages.json", [r.to_dict() for r in results])
    _remove_stale_stages(out_dir, {r.directory.name for r in results})
    return results


def _remove_stale_stages(out_dir: Path, keep: set[str]) -> None:
    """Stage directories of an earlier, longer run in the same place would pass for this run's."""
    kinds = {"float", *STAGES}
    for path in out_dir.iterdir():
        match = re.fullmatch(r"\d+-([a-z]+)", path.name)
        if path.is_dir() and match and match.group(1) in kinds and path.name not in keep:
            shutil.rmtree(path)
