"""The early-exit threshold sweep: exit rate, accuracy and exact expected MACs per threshold.

Exit rule: a sample leaves at `exit_1` when the exit's max softmax >= threshold; otherwise the
backbone finishes and `final` answers. MACs are counted with `zoo.count_macs`'s rules on the graph
path each sample takes:
  - it exits: the layers `exit_1` depends on (backbone up to the exit + exit head);
  - it does not: every layer of the model (the exit head ran before the decision).
The reference cost is the model without its exit head (the layers `final` depends on): what the
same network costs deployed without early exit. Headline (as T-RecX reports it): the largest MAC
reduction whose accuracy is within 1 percentage point of the final exit's.

The int8 model's sweep (its outputs from LiteRT's reference kernels) is `verify.int8.evaluate_int8`;
tables, Markdown, CSV files and the plot of a sweep are `report.sweep`'s.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from toolchain.train.metrics import accuracy
from toolchain.zoo.exits import EXIT_OUTPUT, FINAL_OUTPUT

TOLERANCE = 0.01  # accuracy loss allowed by the headline (absolute, i.e. 1 percentage point)
FINE_GRID = [round(t, 2) for t in np.linspace(0.0, 1.0, 101)]


@dataclass(frozen=True)
class PathMacs:
    exit: int  # samples that leave at exit_1
    full: int  # samples that do not (backbone + final head + the exit head computed before deciding)
    final_only: int  # the model without the exit head: the no-exit reference

    @property
    def exit_head(self) -> int:
        return self.full - self.final_only


@dataclass(frozen=True)
class SweepRow:
    threshold: float
    exit_rate: float
    accuracy: float
    expected_macs: float
    mac_reduction: float  # 1 - expected / final_only


@dataclass
class Sweep:
    rows: list[SweepRow]
    exit_accuracy: float | None  # exit_1 alone on every sample (None: the model has no exit)
    final_accuracy: float  # final alone = the no-exit model
    macs: PathMacs
    samples: int
    headline: SweepRow | None = None  # largest reduction within TOLERANCE of final_accuracy
    tolerance: float = TOLERANCE
    curve: list[SweepRow] = field(default_factory=list)  # thresholds 0.00..1.00 by 0.01, for the plot

    def to_dict(self) -> dict:
        return {"samples": self.samples, "exit_accuracy": self.exit_accuracy, "final_accuracy": self.final_accuracy,
                "macs": asdict(self.macs), "tolerance": self.tolerance,
                "headline": asdict(self.headline) if self.headline else None,
                "rows": [asdict(r) for r in self.rows]}

    def table_rows(self) -> tuple[list[str], list[list]]:
        headers = ["threshold", "exit rate %", "accuracy %", "expected MACs", "MAC reduction %"]
        rows = [[f"{r.threshold:.2f}", 100 * r.exit_rate, 100 * r.accuracy, round(r.expected_macs),
                 100 * r.mac_reduction] for r in self.rows]
        return headers, rows

    def summary_lines(self) -> list[str]:
        m = self.macs
        lines = [f"samples: {self.samples}",
                 f"final exit alone (no-exit model): {100 * self.final_accuracy:.2f}% at {m.final_only:,} MACs"]
        if self.exit_accuracy is not None:
            lines.append(f"exit_1 alone: {100 * self.exit_accuracy:.2f}% at {m.exit:,} MACs "
                         f"({100 * m.exit / m.final_only:.1f}% of the no-exit MACs; exit head {m.exit_head:,} MACs)")
        if self.headline is not None:
            h = self.headline
            lines.append(f"headline: {100 * h.mac_reduction:.1f}% fewer MACs at {100 * h.accuracy:.2f}% accuracy "
                         f"(within {100 * self.tolerance:g} pt of final), threshold {h.threshold:.2f}, "
                         f"exit rate {100 * h.exit_rate:.1f}%")
        return lines

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["threshold", "exit_rate", "accuracy", "expected_macs", "mac_reduction"])
        for r in self.rows:
            writer.writerow([r.threshold, f"{r.exit_rate:.6f}", f"{r.accuracy:.6f}", f"{r.expected_macs:.1f}",
                             f"{r.mac_reduction:.6f}"])
        return buf.getvalue()


def exit_mask(exit_probs: np.ndarray, threshold: float) -> np.ndarray:
    return np.max(exit_probs, axis=-1) >= threshold


def sweep_row(exit_probs, final_probs, labels, threshold: float, macs: PathMacs) -> SweepRow:
    leave = exit_mask(exit_probs, threshold)
    predicted = np.where(leave, np.argmax(exit_probs, axis=-1), np.argmax(final_probs, axis=-1))
    rate = float(np.mean(leave)) if len(leave) else 0.0
    expected = rate * macs.exit + (1.0 - rate) * macs.full
    return SweepRow(float(threshold), rate, float(np.mean(predicted == labels)) if len(labels) else 0.0,
                    expected, 1.0 - expected / macs.final_only)


def sweep(exit_probs: np.ndarray | None, final_probs: np.ndarray, labels: np.ndarray, thresholds,
          macs: PathMacs, tolerance: float = TOLERANCE) -> Sweep:
    """The sweep from per-sample softmax outputs (`exit_probs` None for a model without exit)."""
    labels = np.asarray(labels)
    final_acc = accuracy(final_probs, labels)
    if exit_probs is None:
        row = SweepRow(math.inf, 0.0, final_acc, float(macs.full), 1.0 - macs.full / macs.final_only)
        return Sweep([], None, final_acc, macs, len(labels), headline=row, tolerance=tolerance)
    rows = [sweep_row(exit_probs, final_probs, labels, t, macs) for t in sorted(thresholds)]
    candidates = [sweep_row(exit_probs, final_probs, labels, t, macs) for t in sorted(set(FINE_GRID) | set(thresholds))]
    candidates.append(sweep_row(exit_probs, final_probs, labels, math.inf, macs))  # never exit
    within = [r for r in candidates if r.accuracy >= final_acc - tolerance - 1e-12]
    headline = max(within, key=lambda r: (r.mac_reduction, r.accuracy))
    return Sweep(rows, accuracy(exit_probs, labels), final_acc, macs, len(labels), headline=headline,
                 tolerance=tolerance, curve=[r for r in candidates if math.isfinite(r.threshold)])


def path_macs(model) -> PathMacs:
    """Exact MACs of each inference path of `model` (a single-output model has one path)."""
    from toolchain import zoo
    from toolchain.tf import import_tf

    _, keras = import_tf()
    full = zoo.count_macs(model)
    names = list(model.output_names)
    if EXIT_OUTPUT not in names:
        return PathMacs(exit=full, full=full, final_only=full)
    outputs = dict(zip(names, model.outputs))
    exit_macs = zoo.count_macs(keras.Model(model.inputs, outputs[EXIT_OUTPUT]))
    final_macs = zoo.count_macs(keras.Model(model.inputs, outputs[FINAL_OUTPUT]))
    return PathMacs(exit=exit_macs, full=full, final_only=final_macs)


def predict(model, x: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray | None, np.ndarray]:
    """(exit_1 probabilities or None, final probabilities) of a Keras model."""
    outputs = model.predict(x, batch_size=batch_size, verbose=0)
    names = list(model.output_names)
    if len(names) == 1:
        return None, np.asarray(outputs)
    by_name = dict(zip(names, outputs))
    return np.asarray(by_name[EXIT_OUTPUT]), np.asarray(by_name[FINAL_OUTPUT])


def evaluate(model, dataset, thresholds, *, split: str = "test", tolerance: float = TOLERANCE) -> Sweep:
    """Sweep `thresholds` over `dataset`'s `split` (test, val or train) with `model` (Keras)."""
    x, y = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
    exit_probs, final_probs = predict(model, x)
    return sweep(exit_probs, final_probs, y, thresholds, path_macs(model), tolerance)
