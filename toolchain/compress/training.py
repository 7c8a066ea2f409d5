"""Fine-tuning and scoring shared by the compression stages.

Classifiers train with sparse categorical cross-entropy on every output: `final` (or the last output)
with weight 1.0, early exits with `exit_weight` (EXIT_LOSS_WEIGHT unless the caller passes the
recipe's). Autoencoders (dataset task "anomaly") train with MSE to their input and are scored by ROC
AUC of the reconstruction error; classifiers by top-1 accuracy. Scores are per output name, so exits
are reported separately.
"""
from __future__ import annotations

import numpy as np

from toolchain.compress.graph import final_output, output_names
from toolchain.tf import import_tf

EXIT_LOSS_WEIGHT = 0.5
PREDICT_BATCH = 256
RECALIBRATION_SAMPLES = 512


def metric_name(dataset) -> str:
    return "auc" if dataset.task == "anomaly" else "accuracy"


def split(dataset, name: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    x, y = getattr(dataset, f"x_{name}"), getattr(dataset, f"y_{name}")
    return (x[:limit], y[:limit]) if limit else (x, y)


def targets(model, dataset, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """What each output is trained towards: the labels, or (autoencoder) the input itself."""
    if dataset.task == "anomaly":
        return [x.reshape(len(x), *tuple(o.shape[1:])) for o in model.outputs]
    return [y] * len(model.outputs)


def loss_weights(model, exit_weight: float = EXIT_LOSS_WEIGHT) -> dict[str, float]:
    final = final_output(model)
    return {name: 1.0 if name == final else exit_weight for name in output_names(model)}


def compile_for(model, dataset, lr: float, loss=None, exit_weight: float = EXIT_LOSS_WEIGHT) -> None:
    _, keras = import_tf()
    if loss is None:
        loss = "mse" if dataset.task == "anomaly" else "sparse_categorical_crossentropy"
    names = output_names(model)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss={n: loss for n in names},
                  loss_weights=loss_weights(model, exit_weight))


def fit(model, dataset, *, epochs: int, batch_size: int, lr: float, seed: int = 0, callbacks=(),
        loss=None, y_train: list[np.ndarray] | None = None, exit_weight: float = EXIT_LOSS_WEIGHT,
        verbose: int = 0) -> dict:
    """Train `model` in place on the training split; returns the history (loss per epoch)."""
    _, keras = import_tf()
    keras.utils.set_random_seed(seed)
    compile_for(model, dataset, lr, loss, exit_weight)
    x, y = split(dataset, "train")
    ys = y_train if y_train is not None else targets(model, dataset, x, y)
    history = model.fit(x, dict(zip(output_names(model), ys)), epochs=epochs, batch_size=batch_size,
                        shuffle=True, callbacks=list(callbacks), verbose=verbose)
    return history.history


def recalibrate_batchnorm(model, dataset, samples: int = RECALIBRATION_SAMPLES, seed: int = 0) -> None:
    """Reset every BatchNorm's moving statistics to the batch statistics of a training subset.

    After channels are removed or weights change, the moving averages lag behind (momentum 0.99 needs
    hundreds of steps; a short fine-tuning leaves them stale and the inference-mode model far worse
    than the training-mode one). Re-estimating them from data ("adaptive BN", EagleEye, Li et al. 2020)
    costs one forward pass.
    """
    from toolchain import zoo

    zoo.calibrate_batchnorm(model, calibration_samples(dataset, samples, seed))


def _score(dataset, x: np.ndarray, y: np.ndarray, outputs: dict[str, np.ndarray]) -> dict[str, float]:
    from toolchain.train.metrics import accuracy, roc_auc

    if dataset.task == "anomaly":
        return {name: roc_auc(y, np.mean((out.reshape(len(x), -1) - x.reshape(len(x), -1)) ** 2, axis=1))
                for name, out in outputs.items()}
    return {name: accuracy(out, y) for name, out in outputs.items()}


def predict(model, x: np.ndarray) -> dict[str, np.ndarray]:
    """Outputs by name."""
    out = model.predict(x, batch_size=PREDICT_BATCH, verbose=0)
    out = out if isinstance(out, list) else [out]
    return dict(zip(output_names(model), out))


def scores(model, dataset, split_name: str = "test", limit: int | None = None) -> dict[str, float]:
    """Accuracy (or AUC) of each output of a float Keras model."""
    x, y = split(dataset, split_name, limit)
    return _score(dataset, x, y, predict(model, x))


def tflite_scores(tflite, dataset, split_name: str = "test", limit: int | None = None, *, run) -> dict[str, float]:
    """The same for an int8 .tflite (path or bytes), run by `run(tflite, x)` (LiteRT BUILTIN_REF:
    `verify.int8.predict_tflite`), which returns the dequantized outputs by signature name."""
    x, y = split(dataset, split_name, limit)
    return _score(dataset, x, y, run(tflite, x))


def calibration_samples(dataset, n: int = 100, seed: int = 0) -> np.ndarray:
    """A seeded random subset of the training inputs (PTQ's representative set)."""
    x = dataset.x_train
    pick = np.random.default_rng(seed).permutation(len(x))[:n]
    return np.asarray(x[np.sort(pick)], dtype=np.float32)
