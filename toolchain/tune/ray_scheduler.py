"""PASHA (or ASHA) as a Ray Tune 2.60 `TrialScheduler`: a thin adapter around `toolchain.tune.pasha`.

Ray's own `AsyncHyperBandScheduler` only stops trials; this one pauses a trial at a rung when it is not promoted
and resumes it (from its checkpoint) once it is, which is what lets PASHA's budget grow without retraining.

Contract with the trainable: report once per epoch, with `time_attr` (default `training_iteration`, 1, 2, ...)
and the metric, and save a checkpoint with every report so a paused trial resumes where it stopped (a trial
resumed without one replays its epochs; the core ignores the replayed ones). Run until `r_max` epochs; the
scheduler stops it earlier.

Decisions: CONTINUE between milestones; at a rung, CONTINUE if the trial is promoted right away, else PAUSE;
STOP at `r_max`. `choose_trial_to_run` resumes the paused trial the core promotes before any new trial; as Tune
asks whether or not a slot is free, one promoted trial at a time waits for a slot (until it reports). Trials
paused at the top rung stay paused because the budget may still grow; once nothing is running or pending, the
searcher is done and no trial is promotable, they are stopped, which ends the experiment. (A searcher that counts
paused trials against a concurrency limit, e.g. `ConcurrencyLimiter`, can starve: PASHA keeps many trials paused.)
"""
from __future__ import annotations

import math
import os
import pickle

from ray.tune.experiment import Trial
from ray.tune.result import DEFAULT_METRIC
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from toolchain.tune.pasha import Asha, Decision, Pasha

RAY_DECISION = {Decision.CONTINUE: TrialScheduler.CONTINUE, Decision.PAUSE: TrialScheduler.PAUSE,
                Decision.STOP: TrialScheduler.STOP}


class PashaScheduler(FIFOScheduler):
    """`progressive=False` gives our promotion-type ASHA (maximum budget `r_max`); `core` is the live core."""

    _supports_buffered_results = False  # a decision per epoch; buffered results would run past a rung

    def __init__(self, r_min: int, r_max: int, eta: int = 3, metric: str | None = None, mode: str | None = None,
                 time_attr: str = "training_iteration", epsilon: float | None = None,
                 epsilon_percentile: float = 90, promotion: str = "rank", progressive: bool = True, seed: int = 0,
                 state_file: str | None = None):
        super().__init__()
        # Tune checkpoints the searcher, not the scheduler: with `state_file` the core is written there after every
        # decision and read back by a scheduler that Tuner.restore unpickled fresh (before its first decision).
        self._state_file, self._state_loaded = state_file, False
        self._metric, self._mode, self._time_attr = metric, mode, time_attr
        self._core_args = dict(r_min=r_min, r_max=r_max, eta=eta, promotion=promotion, seed=seed)
        if progressive:
            self._core_args.update(epsilon=epsilon, epsilon_percentile=epsilon_percentile)
        self._progressive = progressive
        self.core: Asha | None = None
        self._resuming: set[str] = set()  # promoted by the core, not reported since
        if mode is not None:
            self._build_core()

    def _build_core(self) -> None:
        if self._mode not in ("max", "min"):
            raise ValueError(f"{type(self).__name__}: mode must be 'max' or 'min', got {self._mode!r}")
        self.core = (Pasha if self._progressive else Asha)(mode=self._mode, **self._core_args)

    def set_search_properties(self, metric: str | None, mode: str | None, **spec) -> bool:
        if (self._metric and metric) or (self._mode and mode):
            return False
        self._metric = metric or self._metric or DEFAULT_METRIC
        if mode:
            self._mode = mode
            self._build_core()
        return True

    def _load_state(self) -> None:
        if self._state_loaded:
            return
        self._state_loaded = True
        if self._state_file and os.path.exists(self._state_file):
            with open(self._state_file, "rb") as f:
                self.core = pickle.load(f)

    def _save_state(self) -> None:
        if self._state_file and self.core is not None:
            tmp = f"{self._state_file}.tmp"
            with open(tmp, "wb") as f:
                pickle.dump(self.core, f)
            os.replace(tmp, self._state_file)

    def on_trial_add(self, tune_controller, trial: Trial) -> None:
        self._load_state()
        if self.core is None:
            raise ValueError(f"{type(self).__name__} needs a metric and a mode (here or in tune.TuneConfig)")

    def on_trial_result(self, tune_controller, trial: Trial, result: dict) -> str:
        if self._time_attr not in result or self._metric not in result:
            return TrialScheduler.CONTINUE
        self._resuming.discard(trial.trial_id)
        self._load_state()
        if self.core.status_of(trial.trial_id) in ("stopped", "retired"):  # restored by Tune after the core ended it
            return TrialScheduler.STOP
        value = result[self._metric]
        if not math.isfinite(value):
            self.core.retire(trial.trial_id)
            self._save_state()
            return TrialScheduler.STOP
        decision = RAY_DECISION[self.core.on_result(trial.trial_id, int(result[self._time_attr]), value)]
        self._save_state()
        return decision

    def on_trial_complete(self, tune_controller, trial: Trial, result: dict) -> None:
        self._forget(trial)

    def on_trial_error(self, tune_controller, trial: Trial) -> None:
        self._forget(trial)

    def on_trial_remove(self, tune_controller, trial: Trial) -> None:
        self._forget(trial)

    def _forget(self, trial: Trial) -> None:
        """Ended before the core was done with it (error, natural end, stopped by Tune): never resume it."""
        self._resuming.discard(trial.trial_id)
        self._load_state()
        if trial.trial_id in self.core.epochs_trained and self.core.status(trial.trial_id) in ("running", "paused"):
            self.core.retire(trial.trial_id)
            self._save_state()

    def choose_trial_to_run(self, tune_controller) -> Trial | None:
        self._load_state()
        trials = {t.trial_id: t for t in tune_controller.get_trials()}
        if not self._resuming:  # Tune asks at every step, free slot or not: one promotion waiting at a time
            promoted = self.core.next_trial_to_resume()
            if promoted is not None:
                self._resuming.add(promoted)
        for trial_id in self._resuming:  # promoted, not started yet (again if asked again: idempotent)
            if trials[trial_id].status == Trial.PAUSED:
                return trials[trial_id]
        for trial in trials.values():
            if trial.status != Trial.PENDING:
                continue
            known = self.core.status_of(trial.trial_id)
            if known == "paused":  # Tuner.restore queues paused trials again: they wait for the core's promotion
                trial.set_status(Trial.PAUSED)
            elif known in ("stopped", "retired"):
                tune_controller.stop_trial(trial)
            else:
                return trial
        if not any(t.status in (Trial.RUNNING, Trial.PENDING) for t in trials.values()) \
                and tune_controller.search_alg.is_finished():
            for trial in trials.values():
                if trial.status == Trial.PAUSED:
                    tune_controller.stop_trial(trial)
        return None

    def debug_string(self) -> str:
        if self.core is None:
            return f"Using {type(self).__name__} (no mode yet)"
        return (f"Using {type(self).__name__}: max budget {self.core.max_budget} of {self.core.r_max}, "
                f"{self.core.total_epochs} epochs trained, {len(self.core.history)} budget growths")

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))
