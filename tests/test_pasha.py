"""PASHA core (toolchain/tune/pasha.py) on synthetic learning curves, and its Ray Tune adapter on a toy trainable.

The cross-check against syne-tune 0.14.2 is `bench/pasha_crosscheck.py` (it needs a throwaway environment)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from toolchain.tune.pasha import Asha, Decision, Pasha, crossing_gaps, rung_levels
from toolchain.tune.simulate import epoch_seconds, make_curves, simulate


def parallel_curves(qualities, epochs):
    """Never crossing: trial i's value is quality_i * (1 - exp(-epoch / 3)) at every epoch."""
    return [[q * (1 - math.exp(-e / 3)) for e in range(1, epochs + 1)] for q in qualities]


def padded(head, epochs):
    """A hand-written curve start, then slowly rising so later epochs keep its rank."""
    return list(head) + [head[-1] + 0.001 * k for k in range(1, epochs - len(head) + 1)]


def test_rung_levels():
    assert rung_levels(1, 81, 3) == (1, 3, 9, 27)
    assert rung_levels(1, 32, 2) == (1, 2, 4, 8, 16)
    assert rung_levels(2, 20, 3) == (2, 6, 18)
    with pytest.raises(ValueError):
        rung_levels(4, 4, 3)
    with pytest.raises(ValueError):
        rung_levels(1, 9, 1)


@pytest.mark.parametrize("mode", ["max", "min"])
def test_agreeing_top_rungs_keep_the_budget_at_the_second_rung(mode):
    qualities = np.random.default_rng(0).uniform(0.5, 0.95, 27)
    curves = parallel_curves(qualities, 81)
    if mode == "min":
        curves = [[1 - v for v in curve] for curve in curves]
    pasha, asha = Pasha(1, 81, 3, mode), Asha(1, 81, 3, mode)
    pasha_trace = simulate(pasha, curves, 4, epoch_seconds(27))
    asha_trace = simulate(asha, curves, 4, epoch_seconds(27))
    assert pasha.max_budget == 3 and pasha.history == ()
    assert max(pasha_trace.epochs_trained.values()) == 3
    assert max(asha_trace.epochs_trained.values()) > 3
    assert pasha_trace.total_epochs < asha_trace.total_epochs
    best = int(np.argmax(qualities))
    assert pasha_trace.best_trial(mode) == asha_trace.best_trial(mode) == best


def crossing_pair(b_at_rung_2):
    """Four trials, Pasha(2, 16, 2): rungs 2, 4, 8; the budget starts at 4. One worker runs A, B, C, D in turn;
    A and B (the best two at rung 2) go on to rung 4, where A beats B."""
    a = padded([0.30, 0.50, 0.55, 0.70], 16)
    b = padded([0.35, b_at_rung_2, 0.60, 0.66], 16)
    c = padded([0.20, 0.30], 16)
    d = padded([0.10, 0.20], 16)
    return [a, b, c, d]


@pytest.mark.parametrize("epsilon, grows", [(0.01, True), (0.1, False)])
def test_a_rank_swap_larger_than_epsilon_grows_the_budget(epsilon, grows):
    # At rung 2 B (0.55) leads A (0.50) by 0.05; at rung 4 A leads.
    pasha = Pasha(2, 16, 2, "max", epsilon=epsilon)
    trace = simulate(pasha, crossing_pair(0.55), 1, [1.0] * 4)
    if grows:
        assert [(g.old_budget, g.new_budget, g.epoch) for g in pasha.history] == [(4, 8, 4)]
        assert pasha.max_budget == 8 and trace.epochs_trained[0] == 8  # A, promoted from the new rung
    else:
        assert pasha.history == () and pasha.max_budget == 4
        assert max(trace.epochs_trained.values()) == 4


def test_epsilon_from_a_pair_that_crosses_and_crosses_back():
    # Looking back from epoch 4 (the top of the rung 2..4 window): A ahead, then behind at 3, then ahead at 2:
    # the gap at epoch 4, 0.70 - 0.66, is the only sample, so its 90th percentile.
    pasha = Pasha(2, 16, 2, "max")
    simulate(pasha, crossing_pair(0.45), 1, [1.0] * 4)
    assert pasha.epsilon == pytest.approx(0.04)
    assert pasha.history == ()
    # B ahead at 2 and 3, behind at 4: crossed once, not back; no sample, epsilon stays 0 and the swap grows it.
    once = Pasha(2, 16, 2, "max")
    simulate(once, crossing_pair(0.55), 1, [1.0] * 4)
    assert [(g.old_budget, g.new_budget, g.epsilon) for g in once.history] == [(4, 8, 0.0)]


def test_crossing_gaps_count_each_pair_that_crossed_back_once():
    curves = {  # from epoch 3 back: each pair is ahead, behind, ahead again
        "a": {1: 0.5, 2: 0.4, 3: 0.6}, "b": {1: 0.45, 2: 0.5, 3: 0.5}, "c": {1: 0.1, 2: 0.8, 3: 0.2},
        "once": {1: 0.9, 2: 0.9, 3: 0.1},  # below all the others at 3, above before: crossed, never back
        "short": {1: 0.3, 2: 0.35},  # never reached the window
    }
    gaps = crossing_gaps(curves, 1, 3)
    assert gaps == pytest.approx([0.1, 0.4, 0.3])  # pairs (a, b), (a, c), (b, c) at epoch 3
    assert crossing_gaps(curves, 1, 2) == []  # at epoch 2 only epoch 1 lies behind: no room to cross back


@pytest.mark.parametrize("seed", range(6))
def test_the_budget_grows_rung_by_rung_and_never_past_r_max(seed):
    curves = make_curves(30, 27, seed=seed, noise=0.03, crossing=True)
    pasha = Pasha(1, 27, 3, "max", seed=seed)
    trace = simulate(pasha, curves, 3, epoch_seconds(30, seed))
    budgets = [3] + [g.new_budget for g in pasha.history]
    allowed = list(pasha.levels[1:]) + [27]
    assert budgets == allowed[: len(budgets)] and pasha.max_budget == budgets[-1] <= 27
    for trial, epochs in trace.epochs_trained.items():
        assert epochs <= pasha.max_budget and epochs in pasha.levels + (27,), (trial, epochs)
    assert pasha.total_epochs == trace.total_epochs


def test_decisions_are_deterministic_for_a_fixed_seed():
    tied = [[0.5] * 27 for _ in range(12)]  # every rank is a tie: only the seeded tie-break orders trials
    runs = {}
    for seed in (0, 0, 1, 2, 3):
        pasha = Pasha(1, 27, 3, "max", seed=seed)
        trace = simulate(pasha, tied, 3, epoch_seconds(12))
        runs.setdefault(seed, []).append((trace.reports, trace.resumes, pasha.history))
    assert runs[0][0] == runs[0][1]
    assert len({repr(runs[s][0][1]) for s in runs}) > 1  # the seed does decide the ties

    curves = make_curves(27, 81, seed=7, noise=0.02)
    traces = [simulate(Pasha(1, 81, 3), curves, 4, epoch_seconds(27)).reports for _ in range(2)]
    assert traces[0] == traces[1]


def test_promotion_hand_checked():
    asha = Asha(1, 9, 3, "max")  # rungs 1 and 3; a trial is promotable in the top floor(n / 3) of its rung
    on = asha.on_result
    assert on("a", 1, 0.5) is Decision.PAUSE  # n=1: top 0
    assert on("b", 1, 0.7) is Decision.PAUSE  # n=2: top 0
    assert asha.next_trial_to_resume() is None
    assert on("c", 1, 0.6) is Decision.PAUSE  # n=3: top 1 is b, not c
    assert asha.next_trial_to_resume() == "b"
    assert asha.next_trial_to_resume() is None
    assert on("d", 1, 0.9) is Decision.CONTINUE  # n=4: top 1 is d itself: goes straight on
    assert on("e", 1, 0.1) is Decision.PAUSE  # n=5, 6: top 1, 2 = d, b, both gone
    assert on("f", 1, 0.2) is Decision.PAUSE
    assert on("g", 1, 0.8) is Decision.CONTINUE  # n=7: top 2 = d, g
    assert [(e.trial_id, e.promoted) for e in asha.rungs[0].entries] == [
        ("d", True), ("g", True), ("b", True), ("c", False), ("a", False), ("f", False), ("e", False)]
    assert on("b", 2, 0.72) is Decision.CONTINUE
    assert on("b", 3, 0.75) is Decision.PAUSE  # rung 3, n=1
    for epoch, value in ((2, 0.88), (3, 0.85)):
        last = on("d", epoch, value)
    assert last is Decision.PAUSE  # n=2
    for epoch, value in ((2, 0.9), (3, 0.95)):
        last = on("g", epoch, value)
    assert last is Decision.CONTINUE  # n=3: top 1 = g
    assert [on("g", epoch, 0.96) for epoch in range(4, 10)][-1] is Decision.STOP  # r_max
    assert asha.next_trial_to_resume() is None
    assert asha.epochs_trained == {"a": 1, "b": 3, "c": 1, "d": 3, "e": 1, "f": 1, "g": 9}
    assert asha.best_trial() == "g"
    with pytest.raises(ValueError):
        on("a", 2, 0.5)  # paused trials do not report


def test_quantile_rule_promotes_the_best_of_two():
    # syne-tune's rule: the best waiting trial if it reaches the rung's (1 - 1/eta) quantile (linear).
    asha = Asha(1, 9, 3, "max", promotion="quantile")
    assert asha.on_result("a", 1, 0.5) is Decision.PAUSE  # one entry: no quantile
    assert asha.on_result("b", 1, 0.7) is Decision.CONTINUE  # 0.7 >= quantile([0.5, 0.7], 2/3) = 0.633
    assert asha.on_result("c", 1, 0.6) is Decision.PAUSE  # best waiting is c, 0.6 < 0.633
    assert Asha(1, 9, 3, "min", promotion="quantile").on_result("a", 1, 0.5) is Decision.PAUSE


def test_bad_reports_are_refused():
    asha = Asha(1, 9, 3)
    with pytest.raises(ValueError):
        asha.on_result("a", 2, 0.5)  # epochs start at 1, one at a time
    with pytest.raises(ValueError):
        asha.on_result("a", 1, float("nan"))
    with pytest.raises(ValueError):
        Pasha(1, 9, 3, mode="maximum")
    assert asha.on_result("a", 1, 0.5) is Decision.PAUSE


def test_ray_tune_adapter_pauses_resumes_and_trains_what_the_core_decided(tmp_path):
    ray = pytest.importorskip("ray")
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from toolchain.tune.ray_scheduler import PashaScheduler

    r_max = 16

    def curve(quality):  # epoch 1 ranks the trials backwards, later epochs by quality: the budget must grow once
        return [0.5 - 0.1 * quality] + [quality * (1 - math.exp(-e / 3)) for e in range(2, r_max + 1)]

    def trainable(config):  # defined here so Ray pickles it by value; checkpoints its epoch every epoch
        import json
        import os
        import tempfile

        start = 0
        checkpoint = tune.get_checkpoint()
        if checkpoint:
            with checkpoint.as_directory() as directory:
                with open(os.path.join(directory, "epoch.json")) as f:
                    start = json.load(f)
        for epoch in range(start + 1, r_max + 1):
            with tempfile.TemporaryDirectory() as directory:
                with open(os.path.join(directory, "epoch.json"), "w") as f:
                    json.dump(epoch, f)
                tune.report({"score": curve(config["quality"])[epoch - 1], "epoch": epoch, "resumed_from": start},
                            checkpoint=tune.Checkpoint.from_directory(directory))

    scheduler = PashaScheduler(r_min=1, r_max=r_max, eta=2)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        results = tune.Tuner(
            trainable, param_space={"quality": tune.uniform(0.5, 0.95)},
            tune_config=tune.TuneConfig(metric="score", mode="max", scheduler=scheduler, num_samples=8,
                                        search_alg=BasicVariantGenerator(random_state=0)),
            run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
        ).fit()
    finally:
        ray.shutdown()
    assert not results.errors
    core = scheduler.core
    trained = {r.metrics["trial_id"]: r.metrics["training_iteration"] for r in results}
    assert trained == core.epochs_trained
    assert all(epochs in core.levels + (r_max,) for epochs in trained.values())
    frames = [r.metrics_dataframe for r in results]
    for frame in frames:  # every epoch once, the trainable's own count agreeing with Tune's
        assert list(frame["training_iteration"]) == list(frame["epoch"]) == list(range(1, len(frame) + 1))
    assert any(frame["resumed_from"].max() >= 1 for frame in frames)  # paused, then resumed from a checkpoint
    assert [(g.old_budget, g.new_budget) for g in core.history] == [(2, 4)] and core.max_budget == 4

    scheduler.save(str(tmp_path / "scheduler.pkl"))  # what Tune stores in an experiment checkpoint
    restored = PashaScheduler(r_min=1, r_max=r_max, eta=2)
    restored.restore(str(tmp_path / "scheduler.pkl"))
    assert restored.core.rungs == core.rungs and restored.core.epochs_trained == core.epochs_trained

    curves = [curve(r.config["quality"]) for r in results]
    asha = simulate(Asha(1, r_max, 2), curves, 2, [1.0] * len(curves))
    assert sum(trained.values()) < asha.total_epochs
