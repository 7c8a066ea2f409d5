"""Knowledge distillation: a student learns from a teacher's softened final output.

Loss of every student output (the final one and each early exit), with the teacher's final logits z_t,
the student's logits z_s, labels y and temperature T:

    alpha * CE(y, softmax(z_s)) + (1 - alpha) * T^2 * KL(softmax(z_t / T) || softmax(z_s / T))

(Hinton et al. 2015; T^2 keeps the soft term's gradients comparable as T changes.) With exits, both
exits learn from the teacher's *final* output, which is the better classifier.

Logits: our classifiers end in a softmax (a Dense/Conv with activation "softmax", or a Softmax /
Activation("softmax") layer). `with_logits` clones a model with those output activations made linear
and the same weights, so the loss works on true logits (no log of probabilities that underflowed to 0).
An output that does not end in a recognisable softmax is taken to be logits already. The student is
trained in its logits form and its weights are copied back into the softmax model at the end.

The teacher is any classifier with the same classes: typically `channels.widen(model, 2)` trained
first ("train large, then compress") or a saved Keras model. Its logits are computed once for the
training set (the teacher is frozen and the inputs are not augmented), so distilling costs about as
much as training the student alone.
"""
from __future__ import annotations

import numpy as np

from toolchain.compress.graph import copy_model, final_output, kind, output_names
from toolchain.compress.training import fit, split
from toolchain.errors import ToolchainError
from toolchain.tf import import_tf


def _softmax_outputs(model) -> set[str]:
    """Names of the layers that write a model output through a softmax."""
    found = set()
    for layer in {t._keras_history.layer for t in model.outputs}:
        config = layer.get_config()
        if config.get("activation") == "softmax" or kind(layer) == "Softmax":
            found.add(layer.name)
    return found


def with_logits(model):
    """A copy of `model` whose softmax outputs give the logits instead (same weights, same names)."""
    _, keras = import_tf()
    from toolchain.zoo.layers import CUSTOM_OBJECTS

    softmax = _softmax_outputs(model)

    def clone(layer):
        config = layer.get_config()
        if layer.name in softmax:
            if kind(layer) == "Softmax":
                return keras.layers.Activation("linear", name=layer.name)
            config["activation"] = "linear"
        return type(layer).from_config(config)

    with keras.utils.custom_object_scope(CUSTOM_OBJECTS):
        logits = keras.models.clone_model(model, clone_function=clone)
    logits.set_weights(model.get_weights())
    return logits


def distillation_loss(alpha: float, temperature: float):
    """Keras loss on packed targets [label, teacher logits...] and student logits."""
    tf, _ = import_tf()
    t = float(temperature)

    def loss(packed, student_logits):
        labels = tf.cast(packed[:, 0], tf.int32)
        teacher_logits = packed[:, 1:]
        ce = tf.keras.losses.sparse_categorical_crossentropy(labels, student_logits, from_logits=True)
        soft_teacher = tf.nn.softmax(teacher_logits / t)
        kl = tf.reduce_sum(soft_teacher * (tf.nn.log_softmax(teacher_logits / t)
                                           - tf.nn.log_softmax(student_logits / t)), axis=-1)
        return alpha * ce + (1.0 - alpha) * t * t * kl

    return loss


def teacher_logits(teacher, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The teacher's final-output logits for `x`."""
    logits = with_logits(teacher)
    out = logits.predict(x, batch_size=batch_size, verbose=0)
    out = out if isinstance(out, list) else [out]
    return np.asarray(dict(zip(output_names(logits), out))[final_output(logits)], dtype=np.float32)


def distill(student, teacher, dataset, *, alpha: float = 0.1, temperature: float = 4.0, epochs: int = 5,
            batch_size: int = 100, lr: float = 1e-3, seed: int = 0, exit_weight: float | None = None):
    """A copy of `student` trained on `dataset` with the distillation loss (see the module docstring)."""
    if dataset.task != "classification":
        raise ToolchainError(f"distillation needs a classifier; dataset {dataset.name!r} is {dataset.task}")
    if not 0.0 <= alpha <= 1.0 or temperature <= 0:
        raise ToolchainError(f"distillation needs 0 <= alpha <= 1 and temperature > 0, got {alpha}, {temperature}")
    x, y = split(dataset, "train")
    soft = teacher_logits(teacher, x)
    classes = {int(o.shape[-1]) for o in student.outputs}
    if classes != {soft.shape[-1]}:
        raise ToolchainError(f"teacher has {soft.shape[-1]} classes, student outputs have {sorted(classes)}")
    packed = np.concatenate([np.asarray(y, np.float32)[:, None], soft], axis=1)
    learner = with_logits(student)
    weight = {} if exit_weight is None else {"exit_weight": exit_weight}
    fit(learner, dataset, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
        loss=distillation_loss(alpha, temperature), y_train=[packed] * len(learner.outputs), **weight)
    trained = copy_model(student)
    trained.set_weights(learner.get_weights())
    return trained
