"""One tuning trial, as a Ray Tune function trainable: the derived recipe's footprint checked against the board
first (an infeasible trial reports once and never trains), then training one epoch at a time, each epoch reported
with a checkpoint (weights, optimizer state, learning curve) so a paused trial resumes where it stopped."""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from toolchain.tune.feasible import Footprint

STATE_FILE, CURVE_FILE, FOOTPRINT_FILE = "state.npz", "curve.json", "footprint.json"


def metric_value(metrics: dict, metric: str) -> float:
    """The tuned metric from one epoch's metrics (see `train.loop.train`); NaN when the epoch has none."""
    if metric == "val_accuracy":
        value = (metrics.get("val_accuracy") or {}).get("final")
    elif metric == "val_exit_accuracy":
        value = (metrics.get("val_accuracy") or {}).get("exit_1")
    else:
        value = metrics.get(metric)
    return float("nan") if value is None else float(value)


def run_trial(config: dict, *, recipe: dict, recipe_name: str, board: str | None, workdir: str) -> None:
    """The Ray trainable (bound with `tune.with_parameters`): `config` maps recipe keys to this trial's values."""
    from ray import tune

    from toolchain.boards import get_board
    from toolchain.recipe import recipe_from_dict
    from toolchain.train.loop import Training, load_dataset
    from toolchain.tune.feasible import footprint
    from toolchain.tune.space import derived_recipe

    os.chdir(workdir)  # the recipe's relative paths (dataset root, cache) are the user's
    base = recipe_from_dict(recipe, name=recipe_name)
    section = base.section("tune")
    derived = derived_recipe(base, config)
    dataset = load_dataset(derived)
    checkpoint = tune.get_checkpoint()
    state, curve, fp = None, [], None
    if checkpoint:
        with checkpoint.as_directory() as directory:
            with np.load(Path(directory) / STATE_FILE, allow_pickle=False) as npz:
                state = {k: npz[k] for k in npz.files}
            curve = json.loads((Path(directory) / CURVE_FILE).read_text())
            fp = Footprint(**json.loads((Path(directory) / FOOTPRINT_FILE).read_text()))
    if fp is None:
        fp = footprint(derived, dataset, get_board(board) if board else None)
    sizes = {k: v for k, v in fp.to_dict().items() if k not in ("feasible", "reason")}
    if not fp.feasible:
        tune.report({section.metric: float("nan"), "feasible": 0, "reason": fp.reason, **sizes, "epoch": 0})
        return
    session = Training(derived, dataset, log=None)
    if state is not None:
        session.load_state(state)
        session.report.history.extend(curve)
    for epoch in range(len(curve), section.max_epochs):
        metrics = session.fit(epoch, epoch + 1)[-1]
        value = metric_value(metrics, section.metric)
        curve.append(metrics)
        with tempfile.TemporaryDirectory(prefix="tinyml-trial-") as directory:
            np.savez(Path(directory) / STATE_FILE, **session.state())
            (Path(directory) / CURVE_FILE).write_text(json.dumps(curve))
            (Path(directory) / FOOTPRINT_FILE).write_text(json.dumps(fp.to_dict()))
            tune.report({section.metric: value if math.isfinite(value) else float("nan"), "feasible": 1,
                         "reason": "", **sizes, "epoch": epoch + 1},
                        checkpoint=tune.Checkpoint.from_directory(directory))
