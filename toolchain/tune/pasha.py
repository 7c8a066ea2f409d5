"""PASHA: asynchronous successive halving whose maximum training budget grows only while it has to.

Bohdal, Balles, Wistuba, Ermis, Archambeau, Zappella, "PASHA: Efficient HPO and NAS with Progressive Resource
Allocation", ICLR 2023. Behaviour follows syne-tune 0.14.2 (`legacy_hyperband_pasha.PASHARungSystem` on top of
its promotion-type ASHA); `bench/pasha_crosscheck.py` replays both on the same curves.

Vocabulary. Epochs are counted from 1 and every trial reports each one. The rung levels are
`r_min * eta**k` below `r_max`; `r_max` ends training and is not a rung. A trial runs to its next milestone (the
next rung level), is recorded there and pauses, unless it is the trial a free worker would resume right away.
A paused trial is *promoted* (resumed up to the next milestone) when the promotion rule admits it; only rungs below
the current maximum budget promote. ASHA's maximum budget is `r_max`. PASHA's starts at the second rung level
and grows one rung level at a time (then to `r_max`) whenever the soft ranking of the trials in its top two rungs
(the rung at the budget and the one below) disagrees.

Soft ranking: the trial ranked i-th at the top rung must have had, one rung below, a value within epsilon of the
i-th best value there (the trials of the top rung only). Epsilon is given, or estimated after every report from
the pairs of learning curves that swapped order twice ("crossed and crossed back") looking back from the latest
epoch both reached inside the top-two-rung window: the `epsilon_percentile` percentile of the gaps between such
pairs at that epoch. With no such pair it keeps its previous value (0 at first); with fewer than two trials in the
comparison it is 0.

Pure Python (and numpy): the Ray Tune adapter is `toolchain.tune.ray_scheduler`.
"""
from __future__ import annotations

import enum
import itertools
import math
import random
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, replace

import numpy as np

TrialId = Hashable
MODES = ("max", "min")


class Decision(enum.Enum):
    CONTINUE = "continue"
    PAUSE = "pause"  # recorded at a rung; `next_trial_to_resume` hands it out once it is promoted
    STOP = "stop"  # trained to r_max


@dataclass(frozen=True)
class RungEntry:
    trial_id: TrialId
    value: float
    promoted: bool = False


@dataclass(frozen=True)
class Rung:
    """A rung as `rungs` shows it: level and entries, best first."""
    level: int
    entries: tuple[RungEntry, ...]


@dataclass(frozen=True)
class BudgetGrowth:
    report: int  # 1-based index of the report that triggered it, over all trials
    trial_id: TrialId
    epoch: int
    old_budget: int
    new_budget: int
    epsilon: float


def rung_levels(r_min: int, r_max: int, eta: int) -> tuple[int, ...]:
    """The milestones `r_min * eta**k` strictly below `r_max`."""
    if not (isinstance(r_min, int) and isinstance(r_max, int) and isinstance(eta, int)):
        raise TypeError("r_min, r_max and eta must be integers")
    if r_min < 1 or eta < 2 or r_max <= r_min:
        raise ValueError(f"need 1 <= r_min < r_max and eta >= 2, got r_min={r_min}, r_max={r_max}, eta={eta}")
    levels, level = [], r_min
    while level < r_max:
        levels.append(level)
        level *= eta
    return tuple(levels)


# A promotion rule: (a rung's entries best first, is this entry waiting to be promoted?, eta, mode) -> the entry
# to promote, or None.
PromotionRule = Callable[[list[RungEntry], Callable[[RungEntry], bool], int, str], "RungEntry | None"]
PROMOTION_RULES: dict[str, PromotionRule] = {}


def promotion_rule(name: str):
    def register(rule: PromotionRule) -> PromotionRule:
        if name in PROMOTION_RULES:
            raise ValueError(f"promotion rule {name!r} registered twice")
        PROMOTION_RULES[name] = rule
        return rule
    return register


@promotion_rule("rank")
def promote_by_rank(ranked, waiting, eta, mode):
    """ASHA (Li et al. 2020): the best waiting trial among the top floor(n / eta) of the rung."""
    return next((e for e in ranked[: len(ranked) // eta] if waiting(e)), None)


@promotion_rule("quantile")
def promote_by_quantile(ranked, waiting, eta, mode):
    """syne-tune's rule: the best waiting trial, if at least as good as the cutoff that leaves 1/eta of the rung's
    values on the better side (numpy's linear quantile); needs two entries. Admits the better of two trials where
    `rank` admits nobody."""
    if len(ranked) < 2:
        return None
    best = next((e for e in ranked if waiting(e)), None)
    if best is None:
        return None
    values = [e.value for e in ranked]
    if mode == "min":
        return best if best.value <= np.quantile(values, 1 / eta) else None
    return best if best.value >= np.quantile(values, 1 - 1 / eta) else None


class Asha:
    """Promotion-type asynchronous successive halving; PASHA with the maximum budget fixed at `r_max`.

    Feed every epoch of every trial to `on_result`; when a worker is free, ask `next_trial_to_resume` before
    starting a new trial. Trial ids are any hashable; ties in the metric are broken by a per-trial draw from a
    generator seeded with `seed`, so a run is a function of (arguments, report order).
    """

    def __init__(self, r_min: int, r_max: int, eta: int = 3, mode: str = "max", promotion: str = "rank",
                 seed: int = 0):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if promotion not in PROMOTION_RULES:
            raise ValueError(f"promotion must be one of {sorted(PROMOTION_RULES)}, got {promotion!r}")
        self.r_min, self.r_max, self.eta, self.mode, self.promotion = r_min, r_max, eta, mode, promotion
        self.levels = rung_levels(r_min, r_max, eta)
        self._rule = PROMOTION_RULES[promotion]
        self._rungs: list[dict[TrialId, RungEntry]] = [{} for _ in self.levels]
        self._rng = random.Random(seed)
        self._tiebreak: dict[TrialId, float] = {}
        self._curves: dict[TrialId, dict[int, float]] = {}  # in order of arrival
        self._milestone: dict[TrialId, int] = {}
        self._status: dict[TrialId, str] = {}  # running | paused | stopped | retired
        self._reports = 0
        self._max_epoch = 0

    # -- what a caller reads
    @property
    def max_budget(self) -> int:
        return self.r_max

    @property
    def history(self) -> tuple[BudgetGrowth, ...]:
        return ()

    @property
    def rungs(self) -> tuple[Rung, ...]:
        return tuple(Rung(level, tuple(self._ranked(rung))) for level, rung in zip(self.levels, self._rungs))

    @property
    def epochs_trained(self) -> dict[TrialId, int]:
        return {t: len(curve) for t, curve in self._curves.items()}

    @property
    def total_epochs(self) -> int:
        return sum(len(curve) for curve in self._curves.values())

    def status(self, trial_id: TrialId) -> str:
        return self._status[trial_id]

    def status_of(self, trial_id: TrialId) -> str | None:
        """`status`, or None for a trial that never reported."""
        return self._status.get(trial_id)

    def best_trial(self) -> TrialId | None:
        """The trial trained longest; among those, the best value at that epoch."""
        if not self._curves:
            return None
        longest = max(len(c) for c in self._curves.values())
        return min((t for t, c in self._curves.items() if len(c) == longest),
                   key=lambda t: self._sort_key(t, self._curves[t][longest]))

    # -- what a caller does
    def on_result(self, trial_id: TrialId, epoch: int, value: float) -> Decision:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"trial {trial_id!r} epoch {epoch}: metric is {value}")
        if trial_id not in self._status:
            self._tiebreak[trial_id] = self._rng.random()
            self._curves[trial_id] = {}
            self._milestone[trial_id] = self.levels[0] if self.levels else self.r_max
            self._status[trial_id] = "running"
        if self._status[trial_id] != "running":
            raise ValueError(f"trial {trial_id!r} reported epoch {epoch} while {self._status[trial_id]}")
        curve = self._curves[trial_id]
        if epoch <= len(curve):  # replayed epochs of a trial resumed without a checkpoint
            return Decision.CONTINUE
        if epoch != len(curve) + 1:
            raise ValueError(f"trial {trial_id!r} reported epoch {epoch} after {len(curve)}; report every epoch")
        curve[epoch] = value
        self._reports += 1
        self._max_epoch = max(self._max_epoch, epoch)
        reached = epoch == self._milestone[trial_id]
        if reached and epoch < self.r_max:
            self._rungs[self.levels.index(epoch)][trial_id] = RungEntry(trial_id, value)
        self._after_report(trial_id, epoch)
        if not reached:
            return Decision.CONTINUE
        if epoch >= self.r_max:
            self._status[trial_id] = "stopped"
            return Decision.STOP
        self._status[trial_id] = "paused"
        found = self._find_promotable()
        if found is not None and found[0] == trial_id:
            self._promote(*found)
            return Decision.CONTINUE
        return Decision.PAUSE

    def next_trial_to_resume(self) -> TrialId | None:
        """A paused trial that is now promotable (the best one of the highest such rung), marked as resumed: it
        continues from its rung to the next milestone. None if there is none."""
        found = self._find_promotable()
        if found is None:
            return None
        self._promote(*found)
        return found[0]

    def retire(self, trial_id: TrialId) -> None:
        """The trial failed or was removed: it stays in the rungs' statistics but is never resumed."""
        if trial_id in self._status:
            self._status[trial_id] = "retired"

    # -- internals
    def _after_report(self, trial_id: TrialId, epoch: int) -> None:
        """Hook for PASHA, after every report (the rung already holds the trial if it reached one)."""

    def _sort_key(self, trial_id: TrialId, value: float) -> tuple[float, float]:
        return (-value if self.mode == "max" else value, self._tiebreak[trial_id])

    def _ranked(self, rung: dict[TrialId, RungEntry]) -> list[RungEntry]:
        return sorted(rung.values(), key=lambda e: self._sort_key(e.trial_id, e.value))

    def _find_promotable(self) -> tuple[TrialId, int] | None:
        def waiting(entry: RungEntry) -> bool:
            return not entry.promoted and self._status[entry.trial_id] == "paused"

        for index in reversed(range(len(self.levels))):
            if self.levels[index] < self.max_budget:
                entry = self._rule(self._ranked(self._rungs[index]), waiting, self.eta, self.mode)
                if entry is not None:
                    return entry.trial_id, index
        return None

    def _promote(self, trial_id: TrialId, index: int) -> None:
        rung = self._rungs[index]
        rung[trial_id] = replace(rung[trial_id], promoted=True)
        self._milestone[trial_id] = self.levels[index + 1] if index + 1 < len(self.levels) else self.r_max
        self._status[trial_id] = "running"


class Pasha(Asha):
    """ASHA whose maximum budget starts at the second rung level and grows while the top two rungs disagree.

    `epsilon`: the soft-ranking tolerance; None estimates it from the curves (`epsilon_percentile`). With fewer
    than two rung levels below `r_max` there is nothing to grow and PASHA is ASHA.
    """

    def __init__(self, r_min: int, r_max: int, eta: int = 3, mode: str = "max", epsilon: float | None = None,
                 epsilon_percentile: float = 90, promotion: str = "rank", seed: int = 0):
        super().__init__(r_min, r_max, eta, mode, promotion, seed)
        if epsilon is not None and not epsilon >= 0:
            raise ValueError(f"epsilon must be >= 0, got {epsilon}")
        if not 0 <= epsilon_percentile <= 100:
            raise ValueError(f"epsilon_percentile must be in [0, 100], got {epsilon_percentile}")
        self.epsilon_percentile = epsilon_percentile
        self._fixed_epsilon = epsilon is not None
        self._epsilon = float(epsilon) if epsilon is not None else 0.0
        self._top = 1 if len(self.levels) >= 2 else None  # index of the top rung of the two compared
        self._budget = self.levels[1] if self._top is not None else r_max
        self._history: list[BudgetGrowth] = []
        self._crossing_gap: dict[tuple[TrialId, TrialId, int], float | None] = {}

    @property
    def max_budget(self) -> int:
        return self._budget

    @property
    def history(self) -> tuple[BudgetGrowth, ...]:
        return tuple(self._history)

    @property
    def epsilon(self) -> float:
        return self._epsilon

    def _after_report(self, trial_id: TrialId, epoch: int) -> None:
        if self._top is None:
            return
        if not self._fixed_epsilon:
            self._estimate_epsilon()
        if not self._ranking_unstable():
            return
        old = self._budget
        if self._top + 1 < len(self.levels):
            self._top += 1
            self._budget = self.levels[self._top]
        else:
            self._budget = self.r_max
        if self._budget != old:
            self._history.append(BudgetGrowth(self._reports, trial_id, epoch, old, self._budget, self._epsilon))

    def _ranking_unstable(self) -> bool:
        top = self._ranked(self._rungs[self._top])
        if not top:
            return False
        below_rung = self._rungs[self._top - 1]
        below = self._ranked({t: below_rung[t] for t in (e.trial_id for e in top)})
        eps = self._epsilon if len(below) >= 2 else 0.0
        for entry, reference in zip(top, below):
            value = below_rung[entry.trial_id].value
            if not reference.value - eps <= value <= reference.value + eps:
                return True
        return False

    def _estimate_epsilon(self) -> None:
        low = min(self._max_epoch, self.levels[self._top - 1])
        high = min(self._max_epoch, self.levels[self._top])
        gaps = crossing_gaps(self._curves, low, high, self._crossing_gap)
        if gaps:
            self._epsilon = float(np.percentile(gaps, self.epsilon_percentile))


def crossing_gaps(curves: Mapping[TrialId, Mapping[int, float]], low: int, high: int,
                  cache: dict | None = None) -> list[float]:
    """The noise samples for epsilon: each pair of trials is looked at once, at the latest epoch in (low, high]
    both reached; if, looking back from there, their order flipped and then flipped back, |a - b| at that epoch.

    `curves`: trial -> epoch (from 1, contiguous) -> value, in the trials' order of arrival (a pair is (earlier,
    later), which only matters for ties). `cache`: (a, b, epoch) -> sample or None, reusable across calls while
    the curves only grow.
    """
    cache = {} if cache is None else cache
    seen, gaps = set(), []
    for epoch in range(high, low, -1):
        for pair in itertools.combinations([t for t, curve in curves.items() if epoch in curve], 2):
            if pair in seen:
                continue
            seen.add(pair)
            key = (*pair, epoch)
            if key not in cache:  # the curves up to `epoch` never change, so neither does the answer
                cache[key] = _gap_if_crossed_back(curves[pair[0]], curves[pair[1]], epoch)
            if cache[key] is not None:
                gaps.append(cache[key])
    return gaps


def _gap_if_crossed_back(a: Mapping[int, float], b: Mapping[int, float], epoch: int) -> float | None:
    ahead = a[epoch] > b[epoch]
    flipped = False
    for earlier in range(epoch - 1, 0, -1):
        if (a[earlier] > b[earlier]) != ahead:
            flipped = True
        elif flipped:
            return abs(a[epoch] - b[epoch])
    return None
