"""`tinyml zoo`, `tinyml train` and `tinyml evaluate` end to end on a tiny registered dataset."""
import json

import pytest

from toolchain.cli import main
from toolchain.data import DATASETS, DatasetSource
from train_data import tiny_classification

RECIPE = """
[model]
name = "kws"
[exit]
style = "trecx"
ev_assist = true
threshold = 0.5
[dataset]
name = "tiny_keywords"
[train]
epochs = 5
batch_size = 16
lr = 0.003
[evaluate]
thresholds = [0.3, 0.6, 0.9]
"""


@pytest.fixture
def tiny_keywords(monkeypatch):
    def loader(root, seed, **options):
        return tiny_classification((49, 10, 1), 12, n=32, seed=seed, name="tiny_keywords")

    source = DatasetSource("tiny_keywords", "generated", "classification", "random test data", loader)
    monkeypatch.setitem(DATASETS._items, "tiny_keywords", source)


def test_zoo_lists_models_with_size_and_cost(capsys):
    assert main(["zoo"]) == 0
    out = capsys.readouterr().out
    for text in ("kws", "keyword spotting", "49x10x1", "22,604", "2,656,768", "block2_pw_relu (25x5x64)",
                 "ad", "265,864", "264,192", "stack1_relu (32x32x16)"):
        assert text in out, text


def test_train_then_evaluate(tmp_path, capsys, tiny_keywords):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(RECIPE)
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--out", str(run), "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "epoch 2/2" in out and "epoch 3" not in out
    assert "exit_1" in out and "combined (exit when max softmax >= 0.5)" in out
    assert json.loads((run / "metrics.json").read_text())["exit"]["ev_assist_copy_epochs"] == 2

    assert main(["evaluate", str(run), "--thresholds", "0.5", "0.9"]) == 0
    out = capsys.readouterr().out
    assert "exit rate %" in out and "headline" in out and str(run / "evaluate" / "sweep.png") in out
    rows = json.loads((run / "evaluate" / "sweep.json").read_text())["rows"]
    assert [r["threshold"] for r in rows] == [0.5, 0.9]

    assert main(["evaluate", str(run), "--int8"]) == 0
    out = capsys.readouterr().out
    assert "int8" in out and (run / "evaluate" / "model_int8.tflite").exists()
    rows = json.loads((run / "evaluate" / "sweep_int8.json").read_text())["rows"]
    assert [r["threshold"] for r in rows] == [0.3, 0.6, 0.9]  # the recipe's


def test_evaluate_needs_a_run(tmp_path, capsys):
    recipe = tmp_path / "never_trained.toml"
    recipe.write_text(RECIPE)
    assert main(["evaluate", str(recipe)]) == 2
    assert "tinyml train" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path)]) == 2


def test_train_reports_recipe_errors_without_traceback(tmp_path, capsys):
    recipe = tmp_path / "bad.toml"
    recipe.write_text(RECIPE.replace("epochs = 5", "epoch = 5"))
    assert main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'epoch'" in err and "Traceback" not in err
