"""`tinyml tune`: the recipe's [tune] search on Ray Tune (this machine by default, a Ray cluster with an address),
with PASHA, Ray's ASHA or FIFO; every trial's learning curve, the plots, the report and the best feasible
configuration as a recipe (`best.toml`).

Output directory:
  ray/            Ray Tune's experiment (what `--resume` restores)
  trials.json     every trial: configuration, feasibility, footprint, learning curve
  curves.png      the learning curves with the rungs, and PASHA's maximum budget as it grew
  pareto.png      accuracy (the metric) against MACs of the feasible trials, the Pareto front marked
  report.md       the tables below, and the command that reproduces the run
  best.toml       the best feasible trial's recipe, for `tinyml pipeline`
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from toolchain.errors import ToolchainError
from toolchain.fsutil import write_atomic, write_json
from toolchain.recipe import Recipe, recipe_to_toml
from toolchain.tune.space import SCHEDULERS, ray_space

EXPERIMENT = "tune"
SCHEDULER_STATE = "pasha_state.pkl"  # PASHA's core after every decision (Tune does not checkpoint schedulers)


@dataclass(frozen=True)
class TuneOptions:
    out: Path
    board: str | None = None
    trials: int | None = None  # default: the recipe's
    scheduler: str = "pasha"
    ray_address: str | None = None
    resume: bool = False
    cpus_per_trial: float = 1.0


@dataclass
class TrialRecord:
    trial_id: str
    config: dict
    feasible: bool
    reason: str
    sizes: dict  # params, macs, weights_bytes, arena_bytes, model_ram_bytes
    curve: list[float] = field(default_factory=list)  # the metric per epoch trained

    @property
    def epochs(self) -> int:
        return len(self.curve)

    def final(self) -> float | None:
        return self.curve[-1] if self.curve and math.isfinite(self.curve[-1]) else None


@dataclass
class TuneResult:
    recipe: Recipe
    options: TuneOptions
    trials: list[TrialRecord]
    budget_growths: list[dict]  # PASHA's: report number, old -> new maximum budget
    seconds: float
    max_budget: int | None = None  # PASHA's maximum budget at the end (None: another scheduler)

    @property
    def metric(self) -> str:
        return self.recipe.section("tune").metric

    @property
    def mode(self) -> str:
        return self.recipe.section("tune").direction

    @property
    def total_epochs(self) -> int:
        return sum(t.epochs for t in self.trials)

    def ranked(self) -> list[TrialRecord]:
        """Feasible trials with a result, best first; a trial's score is its metric at the last epoch it trained
        (the one the scheduler ranked it by), ties broken by fewer MACs."""
        done = [t for t in self.trials if t.feasible and t.final() is not None]
        sign = -1 if self.mode == "max" else 1
        return sorted(done, key=lambda t: (sign * t.final(), t.sizes.get("macs", 0), t.trial_id))

    def pareto(self) -> list[TrialRecord]:
        """The feasible trials no other beats on both the metric and MACs."""
        better = (lambda a, b: a >= b) if self.mode == "max" else (lambda a, b: a <= b)
        front = []
        for t in self.ranked():
            if not any(better(o.final(), t.final()) and o.sizes["macs"] <= t.sizes["macs"]
                       and (o.final() != t.final() or o.sizes["macs"] < t.sizes["macs"]) for o in self.ranked()):
                front.append(t)
        return sorted(front, key=lambda t: t.sizes["macs"])


def check_options(recipe: Recipe, options: TuneOptions) -> None:
    """One-line errors before Ray starts: the section, the space, the scheduler, the board, the output directory."""
    from toolchain.boards import get_board

    section = recipe.section("tune")
    if not section.space:
        raise ToolchainError(f"{recipe.path or recipe.name}: [tune.space] is empty: nothing to tune",
                             'add e.g. [tune.space] "train.lr" = {loguniform = [1e-4, 1e-2]}')
    if options.scheduler not in SCHEDULERS:
        raise ToolchainError(f"unknown scheduler {options.scheduler!r}", f"schedulers: {', '.join(SCHEDULERS)}")
    if options.board:
        get_board(options.board)
    experiment = Path(options.out) / "ray" / EXPERIMENT
    if options.resume and not experiment.is_dir():
        raise ToolchainError(f"nothing to resume in {options.out} (no {experiment})", "run without --resume first")
    if not options.resume and experiment.exists():
        raise ToolchainError(f"{options.out} already holds a tuning run", "pass --resume to continue it, or "
                             "another --out")


def connect(address: str | None) -> None:
    """ray.init on this machine (one trial per core), or on the cluster at `address`; one error if it does not
    answer."""
    import ray

    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")  # trials run in the user's directory (relative paths)
    if ray.is_initialized():
        return
    if address:
        check_answers(address)
        # Ray >= 2.59 clusters started with `ray start` check a token (~/.ray/auth_token on this machine, or
        # RAY_AUTH_TOKEN); the driver sends it only in token mode
        if "RAY_AUTH_MODE" not in os.environ and (os.environ.get("RAY_AUTH_TOKEN")
                                                  or (Path.home() / ".ray" / "auth_token").is_file()):
            os.environ["RAY_AUTH_MODE"] = "token"
    try:
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        else:
            ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ToolchainError(f"Ray could not start or connect{f' to {address}' if address else ''}: {first}",
                             "check the address (--ray-address) and the cluster's token (RAY_AUTH_TOKEN), or tune "
                             "on this machine without --ray-address") from None


PROBE_SECONDS = 5.0


def check_answers(address: str) -> None:
    """A Ray address's port accepts a connection within PROBE_SECONDS (ray.init would wait minutes for one that
    does not)."""
    import socket

    fix = ("start one (`ray start --head --node-ip-address 127.0.0.1`) and pass its address, e.g. --ray-address "
           "127.0.0.1:6379, or leave --ray-address out to tune on this machine")
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ToolchainError(f"--ray-address {address!r} is not HOST:PORT", fix)
    try:
        with socket.create_connection((host, int(port)), timeout=PROBE_SECONDS):
            pass
    except OSError as exc:
        raise ToolchainError(f"no Ray cluster answers at {address} ({exc.strerror or exc})", fix) from None


def make_scheduler(name: str, recipe: Recipe, state_file: Path | None = None):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from toolchain.tune.ray_scheduler import PashaScheduler

    s = recipe.section("tune")
    if name == "pasha":
        return PashaScheduler(r_min=s.min_epochs, r_max=s.max_epochs, eta=s.reduction_factor, epsilon=s.epsilon,
                              seed=s.seed, state_file=None if state_file is None else str(state_file))
    if name == "asha":
        return ASHAScheduler(time_attr="training_iteration", max_t=s.max_epochs, grace_period=s.min_epochs,
                             reduction_factor=s.reduction_factor)
    return FIFOScheduler()


def run_tune(recipe: Recipe, options: TuneOptions, progress: Callable[[str], None] = print) -> TuneResult:
    import time

    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from toolchain.tune.trainable import run_trial

    check_options(recipe, options)
    section = recipe.section("tune")
    out = Path(options.out).resolve()
    connect(options.ray_address)
    out.mkdir(parents=True, exist_ok=True)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, recipe=recipe.to_dict(), recipe_name=recipe.name, board=options.board,
                             workdir=str(Path.cwd())),
        {"cpu": options.cpus_per_trial})
    start = time.perf_counter()
    storage = out / "ray"
    if options.resume:
        progress(f"resuming the tuning run in {storage / EXPERIMENT}")
        tuner = tune.Tuner.restore(str(storage / EXPERIMENT), trainable, resume_unfinished=True, resume_errored=True,
                                   restart_errored=False)
    else:
        (out / SCHEDULER_STATE).unlink(missing_ok=True)  # a new run: no core of an earlier one is read back
        trials = options.trials or section.trials
        progress(f"tuning {recipe.name}: {trials} trials, {options.scheduler}, {section.min_epochs}.."
                 f"{section.max_epochs} epochs (eta {section.reduction_factor}), metric {section.metric} "
                 f"({section.direction}){f', board {options.board}' if options.board else ''}")
        tuner = tune.Tuner(
            trainable, param_space=ray_space(section.space),
            tune_config=tune.TuneConfig(metric=section.metric, mode=section.direction,
                                        scheduler=make_scheduler(options.scheduler, recipe, out / SCHEDULER_STATE),
                                        num_samples=trials, reuse_actors=True,
                                        search_alg=BasicVariantGenerator(random_state=section.seed)),
            run_config=tune.RunConfig(name=EXPERIMENT, storage_path=str(storage), verbose=1,
                                      checkpoint_config=tune.CheckpointConfig(num_to_keep=2)))
    grid = tuner.fit()
    core = _saved_core(out)
    records = [_record(r, section.metric) for r in grid]
    growths = [{"report": g.report, "trial": g.trial_id, "epoch": g.epoch, "old": g.old_budget, "new": g.new_budget}
               for g in (core.history if core is not None else [])]
    result = TuneResult(recipe, options, sorted(records, key=lambda t: t.trial_id), growths,
                        time.perf_counter() - start, core.max_budget if core is not None else None)
    write_outputs(result, out)
    return result


def _saved_core(out: Path):
    """The PASHA core as its scheduler last wrote it (after every decision; also in a restored run, whose scheduler
    Tune unpickled itself), None for another scheduler. Read only from the run's own directory, as `--resume` is."""
    import pickle

    path = out / SCHEDULER_STATE
    return pickle.loads(path.read_bytes()) if path.is_file() else None


def _record(result, metric: str) -> TrialRecord:
    frame = result.metrics_dataframe
    last = result.metrics or {}
    sizes = {k: int(last[k]) for k in ("params", "macs", "weights_bytes", "arena_bytes", "model_ram_bytes")
             if k in last and last[k] is not None}
    feasible = bool(last.get("feasible", 1))
    curve = [] if frame is None or not feasible or metric not in frame else \
        [float(v) for v in frame[metric].tolist()]
    return TrialRecord(last.get("trial_id", ""), dict(result.config), feasible, str(last.get("reason") or ""),
                       sizes, curve)


def write_outputs(result: TuneResult, out: Path) -> None:
    from toolchain.tune import report

    write_json(out / "trials.json", {
        "recipe": result.recipe.name, "metric": result.metric, "mode": result.mode,
        "scheduler": result.options.scheduler, "board": result.options.board, "seconds": round(result.seconds, 1),
        "total_epochs": result.total_epochs, "budget_growths": result.budget_growths,
        "max_budget": result.max_budget,
        "trials": [{"trial_id": t.trial_id, "config": t.config, "feasible": t.feasible, "reason": t.reason,
                    "sizes": t.sizes, "curve": t.curve} for t in result.trials]})
    report.curves_png(result, out / "curves.png")
    if result.ranked():
        report.pareto_png(result, out / "pareto.png")
        best = result.ranked()[0]
        from toolchain.tune.space import derived_recipe

        derived = dataclasses.replace(derived_recipe(result.recipe, best.config), name=f"{result.recipe.name}_best",
                                      path=None)
        header = (f"{result.recipe.name}: the best feasible configuration of `tinyml tune` ({result.options.scheduler},"
                  f" trial {best.trial_id}: {result.metric} {best.final():.4f} after {best.epochs} epochs)\n"
                  + "\n".join(f"{k} = {v!r}" for k, v in sorted(best.config.items())))
        write_atomic(out / "best.toml", recipe_to_toml(derived, header))
    write_atomic(out / "report.md", report.markdown(result))
