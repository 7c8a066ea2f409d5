"""Keras pieces of the training loop: a loss with a changeable weight, and the callbacks that change
things during training (T-RecX early-view assistance, SDN's loss-weight ramp, per-epoch reporting).
Importing this module imports TensorFlow.
"""
from __future__ import annotations

import time
from typing import Callable

from toolchain.tf import import_tf
from toolchain.zoo.exits import EV_DEPTHWISE, EXIT_DEPTHWISE

tf, keras = import_tf()


class WeightedLoss(keras.losses.Loss):
    """`weight * base(y_true, y_pred)` where `weight` is a tf.Variable a callback may change."""

    def __init__(self, base: Callable, weight: float, name: str):
        super().__init__(name=name)
        self.base = base
        self.weight = tf.Variable(float(weight), trainable=False, dtype=tf.float32, name=f"{name}_weight")

    def call(self, y_true, y_pred):
        return self.weight * self.base(y_true, y_pred)


class EarlyViewAssist(keras.callbacks.Callback):
    """T-RecX early-view assistance: before every training batch of the first `copy_epochs` epochs,
    copy the exit's depthwise weights (kernel, bias) into the early-view depthwise conv on the final
    feature map; afterwards that conv trains on its own. `copied_epochs` lists the epochs that copied.
    """

    def __init__(self, copy_epochs: int, source: str = EXIT_DEPTHWISE, target: str = EV_DEPTHWISE):
        super().__init__()
        self.copy_epochs = copy_epochs
        self.source, self.target = source, target
        self.copied_epochs: list[int] = []
        self._epoch = 0

    def on_train_begin(self, logs=None):
        src, dst = self.model.get_layer(self.source), self.model.get_layer(self.target)
        self._pairs = list(zip(src.weights, dst.weights))
        if [w.shape for w, _ in self._pairs] != [w.shape for _, w in self._pairs]:
            raise ValueError(f"{self.source} and {self.target} have different weight shapes")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self._epoch < self.copy_epochs:
            for src, dst in self._pairs:
                dst.assign(src)
            if not self.copied_epochs or self.copied_epochs[-1] != self._epoch:
                self.copied_epochs.append(self._epoch)


class LossWeightRamp(keras.callbacks.Callback):
    """SDN's schedule: the exit's loss weight goes linearly from `start` (first epoch) to `end` (last)."""

    def __init__(self, loss: WeightedLoss, start: float, end: float, epochs: int):
        super().__init__()
        self.loss, self.start, self.end, self.epochs = loss, start, end, epochs

    def weight_at(self, epoch: int) -> float:
        return self.start + (self.end - self.start) * epoch / max(1, self.epochs - 1)

    def on_epoch_begin(self, epoch, logs=None):
        self.loss.weight.assign(self.weight_at(epoch))


class PreciseBatchNorm(keras.callbacks.Callback):
    """Re-estimate every BatchNorm's moving statistics from `samples` (one pass, `zoo.calibrate_batchnorm`)
    before each validation, at each epoch's end and at the end of training ("precise BN").

    The moving averages (momentum 0.99, as the reference models) need a few hundred steps to forget
    their initial values; a short run on a small data set would otherwise validate and deploy with
    statistics of the first batches (chance-level inference accuracy although training accuracy is
    high). Exact statistics cost one forward pass over `samples`.
    """

    def __init__(self, samples):
        super().__init__()
        self.samples = samples
        self._fresh = False

    def recalibrate(self):
        from toolchain.zoo import calibrate_batchnorm

        if not self._fresh:
            calibrate_batchnorm(self.model, self.samples)
            self._fresh = True

    def on_train_batch_end(self, batch, logs=None):
        self._fresh = False

    def on_test_begin(self, logs=None):
        self.recalibrate()

    def on_epoch_end(self, epoch, logs=None):
        self.recalibrate()

    def on_train_end(self, logs=None):
        self.recalibrate()


class EpochReport(keras.callbacks.Callback):
    """After each epoch: `measure(epoch, logs)` -> metrics dict, appended to `history`; `show(metrics)`
    prints it; `on_epoch(epoch, metrics)` returning True stops training."""

    def __init__(self, measure: Callable, show: Callable, on_epoch: Callable | None):
        super().__init__()
        self.measure, self.show, self.on_epoch = measure, show, on_epoch
        self.history: list[dict] = []
        self.stopped_early = False
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        metrics = self.measure(epoch, dict(logs or {}))
        metrics["seconds"] = round(time.perf_counter() - self._start, 2)
        self.history.append(metrics)
        self.show(metrics)
        if self.on_epoch is not None and self.on_epoch(epoch, metrics):
            self.stopped_early = True
            self.model.stop_training = True
