"""`tinyml tune` (issue 18): the recipe's [tune] section, derived recipes, resumable training, the board-aware
footprint (an infeasible configuration never trains), the report, and end to end on Ray (slow: locally, and against
a Ray head started on the loopback address), the best configuration going through `tinyml pipeline`."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from train_data import tiny_anomaly, tiny_classification, tiny_recipe
from toolchain.boards import get_board
from toolchain.cli import main
from toolchain.errors import ToolchainError
from toolchain.recipe import load_recipe, parse_recipe, recipe_from_dict, recipe_to_toml
from toolchain.tune.run import TrialRecord, TuneOptions, TuneResult, check_options
from toolchain.tune.space import TUNABLE, derived_recipe
from toolchain.tune.trainable import metric_value

REPO = Path(__file__).resolve().parents[1]
TINY_AD = """
[model]
name = "ad"

[exit]
style = "none"

[dataset]
name = "synthetic_machine"
seed = 0

[dataset.options]
train_clips = 6
test_clips = 4
clip_seconds = 1.0

[train]
epochs = 4
batch_size = 64
lr = 0.001
bn_recalibration_samples = 0

[target]
samples = 2
calibration_samples = 16

[tune]
metric = "val_loss"
min_epochs = 1
max_epochs = 4
reduction_factor = 2
trials = 4
seed = 0

[tune.space]
"train.lr" = {loguniform = [0.0003, 0.01]}
"model.width" = {choice = [0.25, 4.0]}
"""


def with_tune(tune: str, model: str = "kws") -> str:
    return f'[model]\nname = "{model}"\n[dataset]\nname = "keywords"\n[tune]\n{tune}\n'


@pytest.mark.parametrize("tune, problem", [
    ('[tune.space]\n"train.dropout" = {choice = [0.1]}', r"'train.dropout' cannot be tuned.*\n.*tunable keys: "
                                                          + ", ".join(TUNABLE).replace(".", r"\.")),
    ('[tune.space]\n"train.lr" = {normal = [0, 1]}', "needs one distribution"),
    ('[tune.space]\n"train.lr" = {loguniform = [0, 1]}', "loguniform .* is not a valid range"),
    ('[tune.space]\n"train.optimizer" = {uniform = [0, 1]}', "strings are tuned with choice"),
    ('[tune.space]\n"train.batch_size" = {choice = [32, "64"]}', "choice '64' is not a int"),
    ('metric = "val_f1"', "unknown metric 'val_f1'"),
    ("min_epochs = 4\nmax_epochs = 4", "min_epochs 4 must be below max_epochs 4"),
])
def test_a_wrong_tune_section_names_the_problem(tune, problem):
    with pytest.raises(ToolchainError, match=problem):
        parse_recipe(with_tune(tune))


def test_derived_recipe_applies_the_trial_and_trains_for_the_whole_budget():
    recipe = load_recipe(REPO / "models" / "kws.toml").replace("tune", max_epochs=6)
    derived = derived_recipe(recipe, {"train.lr": 0.002, "train.batch_size": 64.0, "model.width": 0.5})
    assert derived.train.epochs == 6 and derived.train.batch_size == 64 and derived.model.width == 0.5
    # the step schedule keeps its shape: each step's ratio to the first rate
    assert derived.train.lr == 0.002 and derived.train.lr_values == pytest.approx([0.002, 0.0006, 0.0002])
    assert recipe.train.lr == 0.001  # the base recipe is unchanged
    with pytest.raises(ToolchainError, match="lr must be"):
        derived_recipe(recipe, {"train.lr": -1.0})


@pytest.mark.parametrize("name", ["kws", "vww", "ic", "ad"])
def test_recipes_write_as_toml_and_read_back_the_same(name):
    recipe = load_recipe(REPO / "models" / f"{name}.toml").replace("model", width=0.75)
    text = recipe_to_toml(recipe, header="derived")
    assert text.startswith("# derived\n")
    assert parse_recipe(text, name=name).to_dict() == recipe.to_dict()


def test_metric_values_from_an_epochs_metrics():
    epoch = {"val_accuracy": {"exit_1": 0.5, "final": 0.75}, "val_loss": 1.25, "val_auc": None}
    assert metric_value(epoch, "val_accuracy") == 0.75 and metric_value(epoch, "val_exit_accuracy") == 0.5
    assert metric_value(epoch, "val_loss") == 1.25 and np.isnan(metric_value(epoch, "val_auc"))


def test_training_resumes_from_its_state(keras):
    """A paused trial's state (weights, optimizer moments and step count) loads into a new session, which goes on
    with the run's epoch numbers (the learning-rate schedule continues)."""
    from toolchain.train.loop import Training

    ds = tiny_classification((49, 10, 1), 12, n=48)
    recipe = tiny_recipe("kws", epochs=3, lr_schedule="step", lr=0.004, lr_boundaries=[0.5], lr_values=[0.004, 0.001])
    first = Training(recipe, ds, log=None)
    first.fit(0, 1)
    state = first.state()
    second = Training(recipe, ds, log=None)
    second.load_state(state)
    assert all(np.array_equal(a, b) for a, b in zip(second.model.get_weights(), first.model.get_weights()))
    assert int(second.model.optimizer.iterations.numpy()) == int(first.model.optimizer.iterations.numpy()) > 0
    metrics = second.fit(1, 3)
    assert [m["epoch"] for m in metrics] == [2, 3] and [m["lr"] for m in metrics] == [0.004, 0.001]
    with pytest.raises(ToolchainError, match="optimizer state does not fit"):
        Training(recipe, ds, log=None).load_state({**state, "o999": np.zeros(1)})


def test_footprint_refuses_a_model_too_big_for_the_board_before_training(keras):
    from toolchain.tune.feasible import footprint

    recipe = recipe_from_dict({"model": {"name": "ad"}, "dataset": {"name": "tiny_machine"}}, name="ad")
    ds = tiny_anomaly(n=32)
    board = get_board("nrf52840-dk")  # 1 MiB flash
    small = footprint(recipe.replace("model", width=0.25), ds, board)
    big = footprint(recipe.replace("model", width=4.0), ds, board)
    assert small.feasible and small.weights_bytes < board.flash.size and small.macs < big.macs
    assert not big.feasible and "flash but nrf52840-dk has 1,048,576" in big.reason
    assert big.weights_bytes > board.flash.size and big.arena_bytes > small.arena_bytes
    assert footprint(recipe.replace("model", width=4.0), ds, None).feasible  # no board: nothing to check


def _record(trial, value, macs, feasible=True):
    return TrialRecord(trial, {"train.lr": 0.001}, feasible, "" if feasible else "too big",
                       {"macs": macs, "params": macs // 10}, [] if value is None else [0.1, value])


def test_ranking_and_pareto_front_of_feasible_trials(tmp_path):
    recipe = parse_recipe(with_tune('metric = "val_accuracy"\n[tune.space]\n"train.lr" = {choice = [0.1]}'))
    trials = [_record("a", 0.80, 1000), _record("b", 0.90, 3000), _record("c", 0.85, 4000),
              _record("d", None, 10, feasible=False), _record("e", 0.90, 2500)]
    result = TuneResult(recipe, TuneOptions(out=tmp_path), trials, [], 1.0)
    assert [t.trial_id for t in result.ranked()] == ["e", "b", "c", "a"]
    assert [t.trial_id for t in result.pareto()] == ["a", "e"]
    assert result.total_epochs == 8


def test_tune_refuses_before_starting_ray(tmp_path, capsys):
    recipe = tmp_path / "r.toml"
    recipe.write_text(TINY_AD.replace('"model.width" = {choice = [0.25, 4.0]}\n', "").replace(
        '"train.lr" = {loguniform = [0.0003, 0.01]}', ""))
    assert main(["tune", str(recipe), "--out", str(tmp_path / "o")]) == 2
    assert "[tune.space] is empty" in capsys.readouterr().err
    recipe.write_text(TINY_AD)
    assert main(["tune", str(recipe), "--out", str(tmp_path / "o"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["tune", str(recipe), "--out", str(tmp_path / "o"), "--ray-address", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert f"no Ray cluster answers at 127.0.0.1:{port}" in err and "ray start --head" in err
    assert "Traceback" not in err and not (tmp_path / "o").exists()
    with pytest.raises(ToolchainError, match="unknown board"):
        check_options(parse_recipe(TINY_AD), TuneOptions(out=tmp_path / "o", board="nope"))


def _tune(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "toolchain", "tune", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=1200)


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("qemu-system-arm"), reason="the pipeline's last stage runs in QEMU")
def test_tune_end_to_end_locally_resumes_and_the_best_recipe_runs_through_the_pipeline(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    recipe = tmp_path / "ad_tiny.toml"
    recipe.write_text(TINY_AD)
    out = tmp_path / "out"
    proc = _tune([str(recipe), "--board", "nrf52840-dk", "--out", str(out)], tmp_path, env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "trials.json").read_text())
    assert len(report["trials"]) == 4 and report["scheduler"] == "pasha"
    infeasible = [t for t in report["trials"] if t["config"]["model.width"] == 4.0]
    feasible = [t for t in report["trials"] if t["config"]["model.width"] == 0.25]
    assert infeasible and feasible
    assert all(not t["feasible"] and not t["curve"] and "flash" in t["reason"] for t in infeasible)  # no training
    assert all(t["feasible"] and 1 <= len(t["curve"]) <= 4 for t in feasible)
    assert report["total_epochs"] == sum(len(t["curve"]) for t in feasible)
    for name in ("curves.png", "pareto.png", "report.md", "best.toml"):
        assert (out / name).stat().st_size > 0
    assert "infeasible" in proc.stdout and "Pareto front" in proc.stdout
    best = load_recipe(out / "best.toml")
    assert best.model.width == 0.25 and best.train.epochs == 4

    resumed = _tune([str(recipe), "--board", "nrf52840-dk", "--out", str(out), "--resume"], tmp_path, env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    again = json.loads((out / "trials.json").read_text())  # every finished trial kept, nothing trained again
    assert {t["trial_id"]: t["curve"] for t in again["trials"]} == {t["trial_id"]: t["curve"]
                                                                    for t in report["trials"]}

    assert main(["pipeline", str(out / "best.toml"), "--out", str(tmp_path / "pipe")]) == 0
    assert json.loads((tmp_path / "pipe" / "summary.json").read_text())


@pytest.mark.slow
def test_tune_on_a_ray_head_started_on_the_loopback_address(tmp_path):
    ray = str(Path(sys.executable).with_name("ray"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_AUTH_MODE": "token"}
    start = subprocess.run([ray, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                            "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert start.returncode == 0, start.stderr[-2000:]
    try:
        recipe = tmp_path / "ad_tiny.toml"
        recipe.write_text(TINY_AD)
        proc = _tune([str(recipe), "--trials", "2", "--scheduler", "asha", "--ray-address", f"127.0.0.1:{port}",
                      "--out", str(tmp_path / "out")], tmp_path, env)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        report = json.loads((tmp_path / "out" / "trials.json").read_text())
        assert report["scheduler"] == "asha" and len(report["trials"]) == 2
        assert all(t["curve"] for t in report["trials"])  # no --board: every configuration trains
    finally:
        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True, timeout=120)
