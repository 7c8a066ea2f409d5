"""`train(recipe, dataset)`: config in, per-epoch metrics out, model and metrics.json saved.

Classifiers train with sparse categorical cross-entropy on every output (the exit's weighted, see
`zoo.exits`); the AD autoencoder with MSE on normal data, scored by ROC AUC of the reconstruction
error. Runs are deterministic for a given seed on CPU (seeded tf_keras; see `train`).
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from toolchain.errors import ToolchainError
from toolchain.fsutil import write_json
from toolchain.recipe import Recipe, recipe_from_dict
from toolchain.zoo import exits

MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
RECIPE_FILE = "recipe.json"

OnEpoch = Callable[[int, dict], bool | None]


@dataclass
class TrainResult:
    model: Any  # the trained keras.Model (not compiled)
    history: list[dict]  # one metrics dict per epoch (see `train`)
    test: dict  # scores on the test split
    stopped_early: bool = False
    seconds: float = 0.0
    out_dir: Path | None = None
    exit: dict = field(default_factory=dict)  # style, ev_assist, loss weight, EV-assist copy epochs

    def to_dict(self) -> dict:
        return {"history": self.history, "test": self.test, "stopped_early": self.stopped_early,
                "seconds": round(self.seconds, 1), "exit": self.exit}


def load_dataset(recipe: Recipe):
    """The recipe's dataset, through `toolchain.data.load`."""
    from toolchain import data

    d = recipe.dataset
    return data.load(d.name, root=d.root, seed=d.seed, **d.options)


def model_shape(recipe: Recipe, dataset) -> tuple[tuple[int, ...], int | None]:
    """(input shape, number of classes) of the model: the recipe's overrides, checked against the data."""
    from toolchain import zoo

    entry = zoo.get(recipe.model.name)
    anomaly = entry.num_classes is None
    if anomaly != (dataset.task == "anomaly"):
        raise ToolchainError(f"zoo model {entry.name!r} ({entry.task}) cannot train on dataset {dataset.name!r} "
                             f"({dataset.task})")
    shape = tuple(recipe.model.input_shape or dataset.input_shape)
    if shape != tuple(dataset.input_shape):
        raise ToolchainError(f"[model] input_shape {list(shape)} differs from dataset {dataset.name!r}'s "
                             f"{list(dataset.input_shape)}")
    if anomaly:
        return shape, None
    classes = recipe.model.num_classes or dataset.num_classes
    if classes != dataset.num_classes:
        raise ToolchainError(f"[model] num_classes {classes} differs from dataset {dataset.name!r}'s "
                             f"{dataset.num_classes}")
    return shape, classes


def build_model(recipe: Recipe, dataset):
    """The recipe's zoo model with its exit, [model] width times as wide."""
    shape, classes = model_shape(recipe, dataset)
    return exits.build(recipe.model.name, input_shape=shape, num_classes=classes, style=recipe.exit.style,
                       ev_assist=recipe.exit.ev_assist, width=recipe.model.width)


def _optimizer(keras, name: str, lr: float):
    if name == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(lr)
    return keras.optimizers.Adam(lr)


def train(recipe: Recipe, dataset, *, on_epoch: OnEpoch | None = None, out_dir: Path | str | None = None,
          log: Callable[[str], None] | None = print) -> TrainResult:
    """Train the recipe's model on `dataset` (a `toolchain.data.Dataset`).

    Per epoch (in `TrainResult.history`, and passed to `on_epoch(epoch, metrics)` with the 0-based
    epoch index, which may return True to stop): `epoch` (1-based), `lr`, `loss` (the joint loss),
    `val_loss`, `seconds`, and for classifiers `losses` (each output's, weighted as in the joint
    loss), `accuracy` and `val_accuracy` ({"exit_1": .., "final": ..}; only "final" without exit), for
    the autoencoder `val_auc`. `log` gets one compact line per epoch (None: silent). With
    `out_dir`, writes model.keras, metrics.json and recipe.json there (each atomically).
    """
    session = Training(recipe, dataset, on_epoch=on_epoch, log=log)
    session.fit(0, recipe.train.epochs)
    return session.finish(out_dir)


class Training:
    """The recipe's model compiled with its losses, metrics and callbacks, trained over epoch ranges: `train` runs
    every epoch in one `fit`; a tuner runs a few, saves `state()` (weights and optimizer), and later resumes
    another process's training with `load_state` and the next range. Epoch indices are the run's, so the learning
    rate schedule, early-view assistance and loss ramps continue where they were."""

    def __init__(self, recipe: Recipe, dataset, *, on_epoch: OnEpoch | None = None,
                 log: Callable[[str], None] | None = print):
        from toolchain.tf import import_tf

        _, keras = import_tf()
        from toolchain.train import callbacks as cb

        self.start = time.perf_counter()
        self.recipe, self.dataset = recipe, dataset
        t = recipe.train
        shape, classes = model_shape(recipe, dataset)
        # Seeds only: TF's op determinism switch is process-wide and makes every later unseeded random
        # op fail; the CPU kernels used here are deterministic anyway (tests/test_train.py checks it).
        keras.utils.set_random_seed(t.seed)
        model = build_model(recipe, dataset)
        anomaly = classes is None
        outputs = list(model.output_names)
        has_exit = exits.EXIT_OUTPUT in outputs
        extra_callbacks: list = []
        exit_info: dict = {"style": recipe.exit.style, "ev_assist": recipe.exit.ev_assist}

        if anomaly:
            model.compile(optimizer=_optimizer(keras, t.optimizer, t.lr), loss="mse")
        else:
            scce = keras.losses.sparse_categorical_crossentropy
            losses, metrics = {}, {}
            for name in outputs:
                losses[name] = cb.WeightedLoss(scce, 1.0, f"{name}_loss")
                metrics[name] = ["accuracy"]
            if has_exit:
                weight = recipe.exit.loss_weight
                if weight is None:
                    fraction = (exits.exit_cost_fraction(recipe.model.name, shape, classes, recipe.model.width)
                                if recipe.exit.style == "sdn" else None)
                    weight = exits.default_loss_weight(recipe.model.name, recipe.exit.style, fraction)
                exit_loss = losses[exits.EXIT_OUTPUT]
                exit_loss.weight.assign(weight)
                exit_info["loss_weight"] = weight
                if recipe.exit.style == "sdn":
                    extra_callbacks.append(cb.LossWeightRamp(exit_loss, exits.SDN_START_WEIGHT, weight, t.epochs))
                    exit_info["loss_weight_ramp"] = [exits.SDN_START_WEIGHT, weight]
                if recipe.exit.ev_assist:
                    copy_epochs = round(t.ev_assist_fraction * t.epochs)
                    extra_callbacks.append(cb.EarlyViewAssist(copy_epochs))
                    exit_info["ev_assist_copy_epochs"] = copy_epochs
            model.compile(optimizer=_optimizer(keras, t.optimizer, t.lr), loss=losses, metrics=metrics)

        if t.bn_recalibration_samples:
            picked = np.random.default_rng(t.seed).permutation(len(dataset.x_train))[:t.bn_recalibration_samples]
            extra_callbacks.append(cb.PreciseBatchNorm(dataset.x_train[np.sort(picked)]))
        measure = _anomaly_measure(model, dataset, t) if anomaly else _classifier_measure(outputs, t)
        self.report = cb.EpochReport(measure, _show(t.epochs, log), on_epoch)
        lr_schedule = keras.callbacks.LearningRateScheduler(lambda epoch, lr: t.lr_at(epoch))
        if anomaly:
            self.targets, self.validation = dataset.x_train, None
        else:
            self.targets = {name: dataset.y_train for name in outputs}
            self.validation = ((dataset.x_val, {name: dataset.y_val for name in outputs}) if len(dataset.y_val)
                               else None)
        self.model, self.exit_info = model, exit_info
        self.extra_callbacks, self.callbacks = extra_callbacks, [lr_schedule, *extra_callbacks, self.report]

    @property
    def history(self) -> list[dict]:
        return self.report.history

    def fit(self, start: int, stop: int) -> list[dict]:
        """Train epochs [start, stop) (0-based); returns their metrics."""
        done = len(self.report.history)
        self.model.fit(self.dataset.x_train, self.targets, batch_size=self.recipe.train.batch_size,
                       initial_epoch=start, epochs=stop, validation_data=self.validation, shuffle=True, verbose=0,
                       callbacks=self.callbacks)
        return self.report.history[done:]

    def state(self) -> dict[str, np.ndarray]:
        """The weights and the optimizer's variables (its step count and moments), as arrays."""
        weights = {f"w{i}": w for i, w in enumerate(self.model.get_weights())}
        return {**weights, **{f"o{i}": v.numpy() for i, v in enumerate(self._optimizer_variables())}}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        n = sum(1 for k in state if k.startswith("w"))
        self.model.set_weights([state[f"w{i}"] for i in range(n)])
        self.model.optimizer.build(self.model.trainable_variables)
        variables = self._optimizer_variables()
        if len(variables) != sum(1 for k in state if k.startswith("o")):
            raise ToolchainError("the checkpoint's optimizer state does not fit this model", "start the trial anew")
        for i, v in enumerate(variables):
            v.assign(state[f"o{i}"])

    def _optimizer_variables(self) -> list:
        variables = self.model.optimizer.variables
        return list(variables() if callable(variables) else variables)

    def finish(self, out_dir: Path | str | None = None) -> TrainResult:
        """Test scores of the model as trained so far; with `out_dir`, the run saved there (see `train`)."""
        from toolchain.tf import import_tf

        _, keras = import_tf()
        from toolchain.train import callbacks as cb

        for callback in self.extra_callbacks:
            if isinstance(callback, cb.EarlyViewAssist):
                self.exit_info["ev_assist_copied_epochs"] = [e + 1 for e in callback.copied_epochs]
        model = self.model
        # An uncompiled functional copy (same layers): it saves and reloads without our loss classes.
        trained = keras.Model(model.inputs, model.outputs, name=model.name)
        test = _test_scores(trained, self.dataset, self.recipe)
        result = TrainResult(trained, self.report.history, test, self.report.stopped_early,
                             time.perf_counter() - self.start, Path(out_dir) if out_dir is not None else None,
                             self.exit_info)
        if out_dir is not None:
            save_run(result, self.recipe, Path(out_dir))
        return result


def _classifier_measure(outputs: list[str], t) -> Callable:
    single = len(outputs) == 1

    def measure(epoch: int, logs: dict) -> dict:
        def acc(prefix: str) -> dict:
            if single:
                return {exits.FINAL_OUTPUT: logs.get(f"{prefix}accuracy")}
            return {name: logs.get(f"{prefix}{name}_accuracy") for name in outputs}

        losses = ({exits.FINAL_OUTPUT: logs.get("loss")} if single
                  else {name: logs.get(f"{name}_loss") for name in outputs})
        return {"epoch": epoch + 1, "lr": t.lr_at(epoch), "loss": logs.get("loss"), "val_loss": logs.get("val_loss"),
                "losses": losses, "accuracy": acc(""), "val_accuracy": acc("val_")}

    return measure


def _anomaly_measure(model, dataset, t) -> Callable:
    from toolchain.train.metrics import roc_auc

    def measure(epoch: int, logs: dict) -> dict:
        metrics = {"epoch": epoch + 1, "lr": t.lr_at(epoch), "loss": logs.get("loss"), "val_loss": None,
                   "val_auc": None}
        if len(dataset.x_val):
            errors = reconstruction_error(model, dataset.x_val)
            normal = np.asarray(dataset.y_val) == 0
            metrics["val_loss"] = float(errors[normal].mean()) if normal.any() else None
            metrics["val_auc"] = _finite(roc_auc(dataset.y_val, errors))
        return metrics

    return measure


def _finite(x: float) -> float | None:
    return None if x != x else x


def reconstruction_error(model, x: np.ndarray) -> np.ndarray:
    """Mean squared reconstruction error per sample: the anomaly score."""
    reconstructed = model.predict(x, batch_size=512, verbose=0)
    return np.mean((np.asarray(reconstructed) - x.reshape(reconstructed.shape)) ** 2, axis=tuple(range(1, x.ndim)))


def _test_scores(model, dataset, recipe: Recipe) -> dict:
    from toolchain.train.evaluate import evaluate
    from toolchain.train.metrics import roc_auc

    if not len(dataset.x_test):
        return {}
    if dataset.task == "anomaly":
        return {"auc": _finite(roc_auc(dataset.y_test, reconstruction_error(model, dataset.x_test))),
                "samples": len(dataset.x_test)}
    threshold = recipe.exit.threshold
    result = evaluate(model, dataset, [threshold])
    accuracy = {} if result.exit_accuracy is None else {exits.EXIT_OUTPUT: result.exit_accuracy}
    scores = {"samples": result.samples, "accuracy": {**accuracy, exits.FINAL_OUTPUT: result.final_accuracy},
              "macs": {"exit": result.macs.exit, "full": result.macs.full, "final_only": result.macs.final_only}}
    if result.exit_accuracy is not None:
        row = result.rows[0]
        scores["combined"] = {"threshold": threshold, "accuracy": row.accuracy, "exit_rate": row.exit_rate,
                              "expected_macs": row.expected_macs, "mac_reduction": row.mac_reduction}
    return scores


def _show(epochs: int, log: Callable[[str], None] | None) -> Callable[[dict], None]:
    def pct(values: dict) -> str:
        return " ".join(f"{name} {100 * v:5.1f}%" for name, v in values.items() if v is not None)

    def show(m: dict) -> None:
        if log is None:
            return
        parts = [f"epoch {m['epoch']:>{len(str(epochs))}}/{epochs}", f"lr {m['lr']:.1e}", f"loss {m['loss']:.4f}"]
        if m.get("val_loss") is not None:
            parts.append(f"val_loss {m['val_loss']:.4f}")
        if "accuracy" in m:
            parts.append(f"acc {pct(m['accuracy'])}")
            if any(v is not None for v in m["val_accuracy"].values()):
                parts.append(f"val {pct(m['val_accuracy'])}")
        if m.get("val_auc") is not None:
            parts.append(f"val_auc {m['val_auc']:.3f}")
        parts.append(f"{m['seconds']:.1f}s")
        log("  ".join(parts))

    return show


def save_run(result: TrainResult, recipe: Recipe, out_dir: Path) -> None:
    """model.keras, metrics.json and recipe.json into out_dir, each written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".model.", suffix=".keras", dir=out_dir)
    os.close(fd)
    try:
        result.model.save(tmp, overwrite=True)
        os.replace(tmp, out_dir / MODEL_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    write_json(out_dir / RECIPE_FILE, {"name": recipe.name, "sections": recipe.to_dict()})
    write_json(out_dir / METRICS_FILE, {"recipe": recipe.name, "model": result.model.name, **result.to_dict()})


def load_model(path: Path | str):
    """A model saved by `train` (a run directory or the .keras file), with the zoo's custom layers."""
    from toolchain.tf import import_tf

    _, keras = import_tf()
    from toolchain.zoo.layers import CUSTOM_OBJECTS

    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.exists():
        raise ToolchainError(f"no trained model at {path}", "train one with `tinyml train models/<name>.toml`")
    return keras.models.load_model(path, custom_objects=CUSTOM_OBJECTS, compile=False)


def load_run_recipe(run_dir: Path | str) -> Recipe:
    """The recipe a run was trained with (as saved in its recipe.json)."""
    path = Path(run_dir) / RECIPE_FILE
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ToolchainError(f"cannot read {path}: {exc}", "is this a directory written by `tinyml train`?") from exc
    return recipe_from_dict(saved["sections"], name=saved.get("name", "recipe"))
