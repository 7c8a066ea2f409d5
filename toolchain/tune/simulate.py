"""Replay synthetic learning curves through a scheduler with asynchronous workers, without training anything.

Used by the tests, by `bench/pasha_crosscheck.py` (which runs the same driver around syne-tune's PASHA in
another interpreter) and for plots. The driver is an event simulation: each trial takes its own number of
seconds per epoch, a worker reports one epoch at a time, and a free worker first asks the scheduler for a paused
trial to resume, then starts the next new trial, else idles; idle workers ask again after every report.
Events at the same time are taken in the order they were scheduled, so a run is deterministic.
"""
from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from toolchain.tune.pasha import Decision


class Scheduler(Protocol):
    def on_result(self, trial_id: int, epoch: int, value: float) -> Decision: ...

    def next_trial_to_resume(self) -> int | None: ...


@dataclass(frozen=True)
class Report:
    time: float
    trial_id: int
    epoch: int
    value: float
    decision: Decision


@dataclass
class Trace:
    """What happened, in order: every report with its decision, and every resume (trial, from epoch)."""
    reports: list[Report] = field(default_factory=list)
    resumes: list[tuple[int, int]] = field(default_factory=list)

    @property
    def epochs_trained(self) -> dict[int, int]:
        epochs: dict[int, int] = {}
        for report in self.reports:
            epochs[report.trial_id] = max(epochs.get(report.trial_id, 0), report.epoch)
        return dict(sorted(epochs.items()))

    @property
    def total_epochs(self) -> int:
        return sum(self.epochs_trained.values())

    def promoted(self, levels: Sequence[int]) -> dict[int, list[int]]:
        """Rung level -> the trials that went on past it (resumed from it, or continued on reaching it)."""
        out = {level: set() for level in levels}
        for report in self.reports:
            if report.epoch in out and report.decision is Decision.CONTINUE:
                out[report.epoch].add(report.trial_id)
        for trial_id, epoch in self.resumes:
            out[epoch].add(trial_id)
        return {level: sorted(trials) for level, trials in out.items()}

    def best_trial(self, mode: str) -> int | None:
        """The trial trained longest; among those, the best value at that epoch (then the lowest id)."""
        epochs = self.epochs_trained
        if not epochs:
            return None
        longest = max(epochs.values())
        last = {r.trial_id: r.value for r in self.reports if r.epoch == longest}
        sign = -1 if mode == "max" else 1
        return min(last, key=lambda t: (sign * last[t], t))


def make_curves(n_trials: int, epochs: int, seed: int = 0, noise: float = 0.005, crossing: bool = True,
                mode: str = "max") -> list[list[float]]:
    """Saturating accuracy-like curves `a - (a - s) * exp(-epoch / tau) + noise`. With `crossing`, slow starters
    reach higher asymptotes (so early rankings mislead); without, faster trials are also the better ones. For
    mode "min" the curves are 1 - accuracy (a loss-like metric)."""
    rng = np.random.default_rng(seed)
    asymptote = rng.uniform(0.6, 0.95, n_trials)
    tau = rng.uniform(1.0, 12.0, n_trials) if crossing else 2.0 + 8.0 * (0.95 - asymptote)
    start = rng.uniform(0.1, 0.3, n_trials)
    if crossing:
        tau = np.sort(tau)[np.argsort(np.argsort(asymptote))]  # the higher the asymptote, the slower
    t = np.arange(1, epochs + 1)
    curves = asymptote[:, None] - (asymptote - start)[:, None] * np.exp(-t[None, :] / tau[:, None])
    curves = curves + noise * rng.standard_normal(curves.shape)
    if mode == "min":
        curves = 1.0 - curves
    return [[round(float(v), 6) for v in row] for row in curves]


def epoch_seconds(n_trials: int, seed: int = 0) -> list[float]:
    """A per-trial epoch duration in [1, 2) s, so workers report out of step (asynchronously)."""
    rng = np.random.default_rng(seed + 1)
    return [round(float(v), 3) for v in rng.uniform(1.0, 2.0, n_trials)]


def simulate(scheduler: Scheduler, curves: Sequence[Sequence[float]], workers: int,
             seconds: Sequence[float]) -> Trace:
    """Trials are started in id order 0, 1, ...; curves[i][e - 1] is trial i's metric at epoch e."""
    trace = Trace()
    queue: list[tuple[float, int, int, int]] = []  # (finish time, sequence, trial, epoch)
    order = itertools.count()
    done: dict[int, int] = {}
    new_trials = iter(range(len(curves)))

    def assign(now: float) -> bool:
        trial = scheduler.next_trial_to_resume()
        if trial is not None:
            trace.resumes.append((trial, done[trial]))
        else:
            trial = next(new_trials, None)
            if trial is None:
                return False
        heapq.heappush(queue, (now + seconds[trial], next(order), trial, done.get(trial, 0) + 1))
        return True

    idle = sum(not assign(0.0) for _ in range(workers))
    while queue:
        now, _, trial, epoch = heapq.heappop(queue)
        value = curves[trial][epoch - 1]
        decision = Decision(scheduler.on_result(trial, epoch, value))
        trace.reports.append(Report(now, trial, epoch, value, decision))
        done[trial] = epoch
        if decision is Decision.CONTINUE:
            heapq.heappush(queue, (now + seconds[trial], next(order), trial, epoch + 1))
        else:
            idle += 1
        idle = sum(not assign(now) for _ in range(idle))
    return trace
