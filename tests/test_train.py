"""Training: each model's loss drops, early-view assistance copies for the first 80% of epochs only,
runs are deterministic, saved and reloadable; the slow test learns generated keywords."""
import json

import numpy as np
import pytest

from toolchain.errors import ToolchainError
from toolchain.train.loop import MODEL_FILE, METRICS_FILE, load_model, load_run_recipe, train
from toolchain.zoo import exits
from train_data import tiny_anomaly, tiny_classification, tiny_recipe

SHAPES = {"kws": ((49, 10, 1), 12), "ic": ((32, 32, 3), 10), "vww": ((96, 96, 3), 2)}


@pytest.mark.parametrize("name", ["ic", "vww"])
def test_loss_drops_with_trecx_exit(name):
    shape, classes = SHAPES[name]
    data = tiny_classification(shape, classes, n=32, validation=False)
    result = train(tiny_recipe(name, style="trecx", ev_assist=True), data, log=None)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0], losses
    assert set(result.history[-1]["accuracy"]) == {exits.EXIT_OUTPUT, exits.FINAL_OUTPUT}
    assert set(result.test["accuracy"]) == {exits.EXIT_OUTPUT, exits.FINAL_OUTPUT}


def test_kws_trecx_run_trains_copies_saves_and_reloads(tmp_path):
    """One T-RecX KWS run: loss drops, EV-assist copies in epochs 1-4 of 5, files reload, metrics."""
    data = tiny_classification((49, 10, 1), 12, n=32)
    recipe = tiny_recipe("kws", style="trecx", ev_assist=True, epochs=5, bn_recalibration_samples=1000)
    lines = []
    result = train(recipe, data, out_dir=tmp_path, log=lines.append)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0], losses
    assert result.exit["ev_assist_copy_epochs"] == 4 and result.exit["ev_assist_copied_epochs"] == [1, 2, 3, 4]
    assert result.exit["loss_weight"] == 0.3
    assert len(lines) == 5 and lines[0].startswith("epoch 1/5") and "val exit_1" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [METRICS_FILE, MODEL_FILE, "recipe.json"]
    metrics = json.loads((tmp_path / METRICS_FILE).read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3, 4, 5]
    assert metrics["test"]["combined"]["threshold"] == 0.5
    assert load_run_recipe(tmp_path).sections == recipe.sections
    again = load_model(tmp_path)
    np.testing.assert_allclose(again.predict(data.x_test, verbose=0)[1],
                               result.model.predict(data.x_test, verbose=0)[1], rtol=1e-6)


def test_autoencoder_loss_drops_and_reports_auc():
    from toolchain.zoo import calibrate_batchnorm

    data = tiny_anomaly()
    result = train(tiny_recipe("ad", batch_size=64, lr=0.01, epochs=4, bn_recalibration_samples=1000), data,
                   log=None)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0], losses
    assert 0.0 <= result.test["auc"] <= 1.0 and result.test["samples"] == 64
    # 16 steps of moving averages would be far off; the statistics are the exact ones of the data
    norm = result.model.get_layer("bottleneck_bn")
    trained = [w.numpy().copy() for w in (norm.moving_mean, norm.moving_variance)]
    calibrate_batchnorm(result.model, data.x_train)
    for before, after in zip(trained, (norm.moving_mean, norm.moving_variance)):
        np.testing.assert_allclose(before, after.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("style", ["sdn", "branchy"])
def test_baseline_exits_train(style):
    data = tiny_classification((49, 10, 1), 12, n=32, validation=False)
    result = train(tiny_recipe("kws", style=style), data, log=None)
    final_losses = [h["losses"][exits.FINAL_OUTPUT] for h in result.history]
    assert final_losses[-1] < final_losses[0], final_losses
    if style == "sdn":  # SDN's weight ramps from 0.01 to the exit's relative cost
        low, high = result.exit["loss_weight_ramp"]
        assert low == exits.SDN_START_WEIGHT and 0.3 < high < 0.7
    else:
        assert result.exit["loss_weight"] == 1.0


def test_early_view_assistance_copies_during_the_first_80_percent(keras):
    """The copy happens before every batch of epochs 1-4 of 5, and never in epoch 5."""
    from toolchain.train.callbacks import EarlyViewAssist

    class Recorder(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.src = self.model.get_layer(exits.EXIT_DEPTHWISE)
            self.dst = self.model.get_layer(exits.EV_DEPTHWISE)
            self.same: dict[int, list[bool]] = {}

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            same = all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(self.src.weights, self.dst.weights))
            self.same.setdefault(self.epoch, []).append(same)

    data = tiny_classification((49, 10, 1), 12, n=32)
    keras.utils.set_random_seed(0)
    model = exits.build("kws", style="trecx", ev_assist=True)
    model.compile("adam", "sparse_categorical_crossentropy")
    copier, recorder = EarlyViewAssist(copy_epochs=round(0.8 * 5)), Recorder()
    model.fit(data.x_train, [data.y_train, data.y_train], batch_size=8, epochs=5, verbose=0,
              callbacks=[copier, recorder])
    assert copier.copied_epochs == [0, 1, 2, 3]
    assert all(all(recorder.same[e]) for e in range(4))
    assert not any(recorder.same[4])


def test_same_seed_same_run_and_on_epoch_stops():
    """A 5-epoch run stopped by on_epoch after epoch 2 repeats a 2-epoch run exactly (same seed)."""
    data = tiny_classification((49, 10, 1), 12, n=16, validation=False)
    short = train(tiny_recipe("kws", style="trecx", ev_assist=True, epochs=2), data, log=None)
    seen = []

    def on_epoch(epoch, metrics):
        seen.append((epoch, metrics["lr"]))
        return epoch == 1

    stopped = train(tiny_recipe("kws", style="trecx", ev_assist=True, epochs=5), data, on_epoch=on_epoch, log=None)
    assert seen == [(0, 0.003), (1, 0.003)] and stopped.stopped_early and not short.stopped_early
    assert [h["loss"] for h in stopped.history] == [h["loss"] for h in short.history]
    for a, b in zip(short.model.get_weights(), stopped.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_dataset_must_fit_the_model():
    recipe = tiny_recipe("kws").replace("model", input_shape=[49, 10, 1])
    with pytest.raises(ToolchainError, match="input_shape"):
        train(recipe, tiny_classification((40, 10, 1), 12, n=8), log=None)
    with pytest.raises(ToolchainError, match="num_classes"):
        train(tiny_recipe("kws").replace("model", num_classes=10), tiny_classification((49, 10, 1), 12, n=8), log=None)
    with pytest.raises(ToolchainError, match="anomaly"):
        train(tiny_recipe("kws"), tiny_anomaly(n=16), log=None)


@pytest.mark.slow
def test_kws_learns_generated_keywords(tmp_path):
    """The shipped KWS recipe (T-RecX + EV-assist) on espeak-ng keywords: far above chance (1/12)."""
    from pathlib import Path

    from toolchain.recipe import load_recipe
    from toolchain.train.loop import load_dataset

    recipe = load_recipe(Path(__file__).resolve().parents[1] / "models" / "kws.toml")
    result = train(recipe, load_dataset(recipe), out_dir=tmp_path, log=None)
    accuracy = result.test["accuracy"]
    assert accuracy[exits.FINAL_OUTPUT] > 0.8, accuracy
    assert accuracy[exits.EXIT_OUTPUT] > 0.7, accuracy
    assert result.test["combined"]["accuracy"] > 0.8 and result.test["combined"]["exit_rate"] > 0.2
