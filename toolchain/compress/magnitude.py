"""Unstructured magnitude pruning with tensorflow-model-optimization's polynomial-decay schedule.

The model is wrapped layer by layer: `prune_low_magnitude(whole_model)` refuses models with layers it
does not know (a slice, FACTS.md), so a clone wraps only the layers with kernels tfmot prunes, Conv2D
and Dense, and leaves every other layer (the zoo's ChannelSlice, pooling, BN...) as it is. tfmot's
registry does not prune DepthwiseConv2D kernels (an empty weight list: they are small, ~10% of a
DS-CNN's weights, and sensitive), so sparsity is measured over Conv2D and Dense kernels. Sparsity rises from 0 to the
target along a cubic polynomial during the first END_FRACTION of the fine-tuning steps; the remaining
steps fine-tune with the masks fixed. The wrappers are stripped at the end, leaving a plain model whose
pruned kernel entries are exactly zero. Zeros do not shrink a dense .tflite or save MACs: they pay off
with sparse storage or compression of the weights, and as the start of structured pruning.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from toolchain.compress.graph import WEIGHTED, copy_model, kind
from toolchain.zoo import leaf_layers
from toolchain.compress.training import fit
from toolchain.errors import ToolchainError
from toolchain.tf import import_tf

END_FRACTION = 0.7  # the schedule reaches the target after this share of the steps
UPDATES = 10  # mask updates along the schedule


@dataclass(frozen=True)
class MagnitudeReport:
    target: float
    sparsity: float  # zeros / entries of the pruned layers' kernels
    layers: tuple[str, ...]


def _kernel(layer):
    """The weight tensor pruning acts on (kernel or depthwise_kernel), as a numpy array."""
    return layer.get_weights()[0]


PRUNED = ("Conv2D", "Dense")  # the layers whose kernels tfmot prunes


def prunable_layers(model, kinds=PRUNED) -> list:
    return [layer for layer in leaf_layers(model) if kind(layer) in kinds]


def kernel_sparsity(model) -> float:
    """Fraction of zeros among the kernel entries of the Conv2D and Dense layers."""
    kernels = [_kernel(layer) for layer in prunable_layers(model)]
    total = sum(k.size for k in kernels)
    return float(sum(int(np.count_nonzero(k == 0)) for k in kernels) / total) if total else 0.0


def zero_weights(model) -> int:
    """Zero entries in the kernels of the Conv2D/DepthwiseConv2D/Dense layers."""
    return sum(int(np.count_nonzero(_kernel(layer) == 0)) for layer in prunable_layers(model, WEIGHTED))


def schedule_steps(train_samples: int, batch_size: int, epochs: int) -> tuple[int, int]:
    """(end_step, frequency) of the schedule for this many training steps."""
    total = epochs * math.ceil(train_samples / batch_size)
    if total < 2:
        raise ToolchainError(f"magnitude pruning needs at least 2 training steps, this run has {total}",
                             "raise the epochs or lower the batch size")
    end = max(1, int(END_FRACTION * total))
    frequency = max(1, end // UPDATES)
    return frequency * (end // frequency), frequency


def prune_magnitude(model, dataset, *, sparsity: float, epochs: int = 2, batch_size: int = 100, lr: float = 5e-4,
                    seed: int = 0, **fit_options) -> tuple[object, MagnitudeReport]:
    """A copy of `model` whose Conv2D and Dense kernels are pruned to `sparsity` and fine-tuned
    (`fit_options`: see `training.fit`)."""
    if not 0.0 < sparsity < 1.0:
        raise ToolchainError(f"sparsity must be in (0, 1), got {sparsity}")
    _, keras = import_tf()
    import tensorflow_model_optimization as tfmot

    sparsity_api = tfmot.sparsity.keras
    end_step, frequency = schedule_steps(len(dataset.x_train), batch_size, epochs)
    schedule = sparsity_api.PolynomialDecay(initial_sparsity=0.0, final_sparsity=float(sparsity), begin_step=0,
                                            end_step=end_step, frequency=frequency)
    base = copy_model(model)
    wrapped_names = []

    def wrap(layer):
        if kind(layer) in PRUNED:
            wrapped_names.append(layer.name)
            return sparsity_api.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    pruning = keras.models.clone_model(base, clone_function=wrap)
    fit(pruning, dataset, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
        callbacks=[sparsity_api.UpdatePruningStep()], **fit_options)
    pruned = sparsity_api.strip_pruning(pruning)
    return pruned, MagnitudeReport(float(sparsity), kernel_sparsity(pruned), tuple(wrapped_names))
