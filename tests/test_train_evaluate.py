"""Threshold sweep: per-path MACs on a hand-checkable model, exit rule, headline, AUC, reports."""
import math

import numpy as np
import pytest

from toolchain.compiler.exits import threshold_to_int8
from toolchain.report.sweep import format_sweep, plot_png, write_report
from toolchain.train.evaluate import PathMacs, path_macs, sweep
from toolchain.train.metrics import roc_auc


@pytest.fixture(scope="module")
def toy(keras):
    """input 4x4x1 -> conv 3x3 (2 ch) -> [exit_1: flatten, dense 3] / [final: conv 1x1 (4 ch), flatten, dense 3]."""
    layers = keras.layers
    x = keras.Input((4, 4, 1))
    h = layers.Conv2D(2, 3, padding="same", name="stem")(x)  # 4*4*2 outputs x 9 taps x 1 channel = 288
    e = layers.Dense(3, activation="softmax", name="exit_1")(layers.Flatten()(h))  # 32 x 3 = 96
    f = layers.Conv2D(4, 1, name="body")(h)  # 4*4*4 x 1 x 2 = 128
    f = layers.Dense(3, activation="softmax", name="final")(layers.Flatten()(f))  # 64 x 3 = 192
    return keras.Model(x, [e, f])


def test_path_macs_by_hand(toy, keras):
    macs = path_macs(toy)
    assert macs == PathMacs(exit=288 + 96, full=288 + 96 + 128 + 192, final_only=288 + 128 + 192)
    assert macs.exit_head == 96
    single = keras.Model(toy.inputs, toy.outputs[1])
    assert path_macs(single) == PathMacs(608, 608, 608)


EXIT = np.array([[0.95, 0.03, 0.02], [0.6, 0.3, 0.1], [0.1, 0.85, 0.05], [0.4, 0.35, 0.25]])
FINAL = np.array([[0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.1, 0.1, 0.8]])
LABELS = np.array([0, 0, 2, 2])
MACS = PathMacs(exit=384, full=704, final_only=608)


def test_exit_rule_and_expected_macs():
    result = sweep(EXIT, FINAL, LABELS, [0.5, 0.9, 0.85], MACS)
    assert [r.threshold for r in result.rows] == [0.5, 0.85, 0.9]
    by_threshold = {r.threshold: r for r in result.rows}
    # 0.9: sample 0 exits (0.95, right); the rest run to final (0 right, 2 right, 2 right)
    r = by_threshold[0.9]
    assert r.exit_rate == 0.25 and r.accuracy == 1.0
    assert r.expected_macs == 0.25 * 384 + 0.75 * 704
    assert r.mac_reduction == pytest.approx(1 - r.expected_macs / 608)
    # 0.85 (>= is inclusive): samples 0 and 2 exit; sample 2's exit answer (1) is wrong
    r = by_threshold[0.85]
    assert r.exit_rate == 0.5 and r.accuracy == 0.75
    # 0.5: samples 0, 1, 2 exit (right, right, wrong); sample 3 runs to final (right)
    r = by_threshold[0.5]
    assert r.exit_rate == 0.75 and r.accuracy == 0.75
    assert result.exit_accuracy == 0.5 and result.final_accuracy == 0.75


def test_headline_is_the_largest_reduction_within_one_point():
    result = sweep(EXIT, FINAL, LABELS, [0.9], MACS)
    # final alone: 75%. Thresholds in (0.4, 0.6] let samples 0-2 exit at 75%; <= 0.4 all exit at 50%
    h = result.headline
    assert (h.threshold, h.exit_rate, h.accuracy) == (0.41, 0.75, 0.75)
    assert all(r.mac_reduction <= h.mac_reduction for r in result.curve if r.accuracy >= 0.75)
    assert len(result.curve) == 101


def test_no_exit_model_sweeps_to_itself():
    result = sweep(None, FINAL, LABELS, [0.5], PathMacs(608, 608, 608))
    assert result.rows == [] and result.exit_accuracy is None
    assert result.headline.mac_reduction == 0.0 and math.isinf(result.headline.threshold)


def test_int8_threshold_matches_the_float_rule():
    scale, zero_point = 1 / 256, -128
    for threshold in (0.0, 0.5, 0.9, 0.95, 0.99, 1.0):
        q = threshold_to_int8(threshold)
        for score in range(-128, 128):
            assert (score >= q) == (scale * (score - zero_point) >= threshold), (threshold, score)


def test_roc_auc_matches_scikit_learn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = np.round(rng.random(500) + 0.4 * labels, 1)  # many ties
    assert roc_auc(labels, scores) == pytest.approx(sklearn_metrics.roc_auc_score(labels, scores), abs=1e-12)
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert math.isnan(roc_auc([0, 0], [0.1, 0.2]))


def test_reports(tmp_path):
    result = sweep(EXIT, FINAL, LABELS, [0.5, 0.9], MACS)
    paths = write_report(result, tmp_path, title="toy")
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = paths["md"].read_text()
    assert md.startswith("## toy") and "| 0.90 | 25.00 | 100.00 | 624 |" in md and "headline" in md
    assert paths["csv"].read_text().splitlines()[0] == "threshold,exit_rate,accuracy,expected_macs,mac_reduction"
    assert "within 1 pt" in format_sweep(result)
    assert plot_png({"a": result, "b": sweep(None, FINAL, LABELS, [], MACS)})[:4] == b"\x89PNG"
