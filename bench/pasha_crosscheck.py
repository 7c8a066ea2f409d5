"""Our PASHA core next to syne-tune 0.14.2's PASHA, replayed on the same synthetic learning curves.

    python bench/pasha_crosscheck.py --syne-python /tmp/synetune-env/bin/python [--json OUT.json]

syne-tune is never a dependency of ours: it lives in a throwaway environment, e.g.

    python3 -m venv /tmp/synetune-env
    /tmp/synetune-env/bin/pip install --no-deps syne-tune==0.14.2
    /tmp/synetune-env/bin/pip install "numpy>=1.22,<1.27" "pandas<2.3" dill sortedcontainers typing_extensions

Both schedulers run inside the same event-driven driver (`toolchain.tune.simulate.simulate`: workers, per-trial
epoch durations, resume-before-start), ours in this process, syne-tune's `PASHARungSystem` (its promotion-type
ASHA plus the progressive budget, driven through the calls its HyperbandScheduler makes: on_task_add,
on_task_report, on_task_schedule) in `--syne-python` via a subprocess that exchanges JSON. The driver module
imports only numpy and our pure-Python core, so it runs there too. Trial ids are small ints, which keeps
syne-tune's set-iteration order (and so its epsilon) reproducible.

Printed per scenario: the max-budget growths, the trials promoted past each rung, total epochs, the best trial,
the final epsilon, and whether the whole decision sequence is identical; ours is run with syne-tune's promotion
rule ("quantile") and with our default ("rank"), the second showing what the rule alone changes.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toolchain.tune.pasha import Asha, Decision, Pasha, rung_levels  # noqa: E402
from toolchain.tune.simulate import epoch_seconds, make_curves, simulate  # noqa: E402

SCENARIOS = [
    # name, trials, r_min, r_max, eta, workers, mode, noise, crossing, seed
    ("separated", 27, 1, 81, 3, 4, "max", 0.002, False, 1),
    ("noisy", 27, 1, 81, 3, 4, "max", 0.02, False, 1),
    ("crossing", 27, 1, 81, 3, 4, "max", 0.005, True, 2),
    ("crossing-min", 27, 1, 81, 3, 4, "min", 0.005, True, 2),
    ("eta2", 32, 1, 32, 2, 3, "max", 0.01, True, 3),
    ("many", 81, 1, 81, 3, 8, "max", 0.01, True, 4),
]


def scenario_specs() -> list[dict]:
    specs = []
    for name, trials, r_min, r_max, eta, workers, mode, noise, crossing, seed in SCENARIOS:
        specs.append(dict(name=name, r_min=r_min, r_max=r_max, eta=eta, workers=workers, mode=mode,
                          curves=make_curves(trials, r_max, seed, noise, crossing, mode),
                          seconds=epoch_seconds(trials, seed)))
    return specs


class _SortedIterationSet(set):
    def __iter__(self):
        return iter(sorted(set.__iter__(self)))


def patched_rung_system(base: type) -> type:
    """syne-tune's PASHA with two accidents of its implementation removed, to show they are the only differences:
    its rungs' hand-written linear quantile is an ulp off numpy's when (n - 1) / eta is whole, so the trial sitting
    exactly at the cutoff is refused; and it de-duplicates the pairs of its epsilon estimate by the *ordered* tuple
    that iterating a Python set yields, which for int ids beyond the set's table size differs between epochs, so a
    pair can be counted twice (at two epochs)."""
    import numpy as np

    class Patched(base):
        def __init__(self, *args):
            super().__init__(*args)
            for rung in self._rungs:
                rung.quantile = _numpy_quantile(rung, self._mode, np)

        def _update_per_epoch_results(self, trial_id, result):
            super()._update_per_epoch_results(trial_id, result)
            epoch = result[self._resource_attr]
            self.epoch_to_trials[epoch] = _SortedIterationSet(self.epoch_to_trials[epoch])

    return Patched


def _numpy_quantile(rung, mode: str, np):
    def quantile():
        if len(rung.data) < 2:
            return None
        q = rung.prom_quant if mode == "min" else 1 - rung.prom_quant
        return float(np.quantile([entry.metric_val for entry in rung.data], q))
    return quantile


class SyneTunePasha:
    """syne-tune's PASHARungSystem behind the driver's two calls, as its HyperbandScheduler would drive it: a trial
    reaching a milestone pauses, and the freed worker asks on_task_schedule for a promotion (possibly the same
    trial, which then just continues)."""

    def __init__(self, spec: dict, patched: bool = False):
        from syne_tune.optimizer.schedulers.legacy_hyperband_pasha import PASHARungSystem

        levels = list(rung_levels(spec["r_min"], spec["r_max"], spec["eta"]))
        system = patched_rung_system(PASHARungSystem) if patched else PASHARungSystem
        self.rungs = system(levels, [1 / spec["eta"]] * len(levels), "metric", spec["mode"], "epoch", spec["r_max"])
        self.history: list[list] = []
        self._reports = 0
        self._started: set[int] = set()
        self._handed_out: int | None = None

    def on_result(self, trial_id: int, epoch: int, value: float) -> Decision:
        if trial_id not in self._started:
            self._started.add(trial_id)
            self.rungs.on_task_add(trial_id, 0, new_config=True)
        before = self.rungs.current_max_t
        answer = self.rungs.on_task_report(trial_id, {"metric": value, "epoch": epoch}, 0)
        self._reports += 1
        if self.rungs.current_max_t != before:
            self.history.append([self._reports, trial_id, epoch, int(before), int(self.rungs.current_max_t),
                                 float(self.rungs.epsilon)])
        if answer["task_continues"]:
            return Decision.CONTINUE
        if answer["next_milestone"] is None:
            return Decision.STOP
        promoted = self._schedule()
        if promoted == trial_id:
            return Decision.CONTINUE
        self._handed_out = promoted
        return Decision.PAUSE

    def next_trial_to_resume(self) -> int | None:
        if self._handed_out is not None:
            trial_id, self._handed_out = self._handed_out, None
            return trial_id
        return self._schedule()

    def _schedule(self) -> int | None:
        answer = self.rungs.on_task_schedule(None)
        if "trial_id" not in answer:
            return None
        self.rungs.on_task_add(answer["trial_id"], 0, new_config=False, milestone=answer["milestone"],
                               resume_from=answer["resume_from"])
        return answer["trial_id"]


def run(spec: dict, scheduler, history: list[list], epsilon: float) -> dict:
    trace = simulate(scheduler, spec["curves"], spec["workers"], spec["seconds"])
    levels = rung_levels(spec["r_min"], spec["r_max"], spec["eta"])
    return dict(
        decisions=[[r.trial_id, r.epoch, r.decision.value] for r in trace.reports],
        resumes=[list(r) for r in trace.resumes],
        growth=history,
        promoted={str(level): trials for level, trials in trace.promoted(levels).items()},
        total_epochs=trace.total_epochs,
        best_trial=trace.best_trial(spec["mode"]),
        epsilon=epsilon,
    )


def run_ours(spec: dict, promotion: str) -> dict:
    pasha = Pasha(spec["r_min"], spec["r_max"], spec["eta"], spec["mode"], promotion=promotion)
    out = run(spec, pasha, [], 0.0)
    out["growth"] = [[g.report, g.trial_id, g.epoch, g.old_budget, g.new_budget, g.epsilon] for g in pasha.history]
    out["epsilon"] = pasha.epsilon
    return out


def run_syne_worker() -> None:
    """In the syne-tune interpreter: scenarios on stdin, results on stdout."""
    results = []
    for spec in json.load(sys.stdin):
        for patched in (False, True):
            pasha = SyneTunePasha(spec, patched)
            out = run(spec, pasha, pasha.history, 0.0)
            out["epsilon"] = float(pasha.rungs.epsilon)
            results.append(out)
    json.dump(results, sys.stdout)


def run_syne(python: str, specs: list[dict]) -> list[dict]:
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run([python, __file__, "--syne-worker"], input=json.dumps(specs), capture_output=True,
                          text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"syne-tune side failed:\n{done.stderr}")
    return json.loads(done.stdout)


def agreement_text(result: dict, other: dict) -> str:
    """"identical" (every decision and resume, the growths with their epsilon), else where they part and which
    outcomes still agree."""
    if all(result[k] == other[k] for k in ("decisions", "resumes", "growth")):
        return "identical"
    parts = []
    pairs = list(zip(result["decisions"], other["decisions"]))
    first = next((i for i, (a, b) in enumerate(pairs) if a != b), None)
    if first is not None:
        parts.append(f"decisions from report {first + 1}")
    elif len(result["decisions"]) != len(other["decisions"]):
        parts.append(f"{len(result['decisions'])} vs {len(other['decisions'])} reports")
    same_steps = [g[:5] for g in result["growth"]] == [g[:5] for g in other["growth"]]
    if same_steps and result["growth"] != other["growth"]:
        eps = [f"{a[5]:.6f} vs {b[5]:.6f}" for a, b in zip(result["growth"], other["growth"]) if a != b]
        parts.append(f"epsilon at growth {', '.join(eps)}")
    verdicts = [("growths", same_steps), ("promoted sets", result["promoted"] == other["promoted"]),
                ("epochs", result["total_epochs"] == other["total_epochs"]),
                ("best", result["best_trial"] == other["best_trial"])]
    same = [name for name, ok in verdicts if ok]
    return "differs: " + "; ".join(parts) + (f"; same {', '.join(same)}" if same else "")


def best_text(spec: dict, best: int) -> str:
    """The chosen trial, its value at r_max, and the best value at r_max of all trials (the oracle)."""
    finals = [curve[-1] for curve in spec["curves"]]
    oracle = max(finals) if spec["mode"] == "max" else min(finals)
    return f"{best} ({finals[best]:.3f} / {oracle:.3f})"


def budgets(result: dict) -> str:
    if not result["growth"]:
        return "none"
    return ", ".join(f"{old}->{new} @{report}" for report, _, _, old, new, _ in result["growth"])


def promoted(result: dict) -> str:
    return "; ".join(f"{level}: {len(trials)}" for level, trials in result["promoted"].items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--syne-python", help="interpreter with syne-tune 0.14.2 installed")
    parser.add_argument("--syne-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write every run's decisions here")
    args = parser.parse_args()
    if args.syne_worker:
        run_syne_worker()
        return
    if not args.syne_python:
        parser.error("--syne-python is required")
    specs = scenario_specs()
    theirs = run_syne(args.syne_python, specs)
    rows, dump = [], []
    for index, spec in enumerate(specs):
        syne, patched = theirs[2 * index], theirs[2 * index + 1]
        same_rule, default_rule = run_ours(spec, "quantile"), run_ours(spec, "rank")
        asha = run(spec, Asha(spec["r_min"], spec["r_max"], spec["eta"], spec["mode"]), [], float("nan"))
        for label, result in (("syne-tune 0.14.2", syne), ("syne-tune, 2 quirks patched", patched),
                              ("ours, quantile rule", same_rule), ("ours, rank rule (default)", default_rule),
                              ("ours, ASHA (rank), for scale", asha)):
            agreement = "" if result is asha else "; ".join(
                f"{name}: {agreement_text(result, other)}" for name, other in
                (("syne-tune", syne), ("patched", patched)) if other is not result)
            rows.append([spec["name"], label, budgets(result), promoted(result), str(result["total_epochs"]),
                         best_text(spec, result["best_trial"]), f"{result['epsilon']:.4f}", agreement])
        dump.append(dict(scenario={k: v for k, v in spec.items() if k not in ("curves", "seconds")},
                         syne_tune=syne, syne_tune_patched=patched, ours_quantile=same_rule, ours_rank=default_rule))
    header = ["scenario", "scheduler", "max-budget growths (old->new @report)", "promoted past rung: trials",
              "epochs", "best (its value at r_max / oracle)", "final epsilon", "agreement"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if args.json:
        args.json.write_text(json.dumps(dump, indent=1))


if __name__ == "__main__":
    main()
