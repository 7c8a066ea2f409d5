"""Keras builders of the MLPerf Tiny reference architectures, and how big they are.

Importing this package is cheap: TensorFlow is imported only when a builder runs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from toolchain.errors import ToolchainError
from toolchain.registry import Registry
from toolchain.tf import import_tf

Builder = Callable[..., Any]  # build(input_shape, num_classes) -> keras.Model, given the registered defaults


@dataclass(frozen=True)
class ZooModel:
    name: str
    task: str
    input_shape: tuple[int, ...]
    num_classes: int | None  # None for regressors such as the autoencoder
    builder: Builder
    description: str

    def build(self, input_shape: tuple[int, ...] | None = None, num_classes: int | None = None,
              width: float = 1.0):
        """The Keras model; a shape or class count not given is the registered one. `width` multiplies every
        channel (unit) count of the hidden layers (`scaled`); the input and the output keep their size."""
        return self.builder(input_shape=tuple(input_shape or self.input_shape),
                            num_classes=num_classes or self.num_classes, width=width)


MODELS: Registry[ZooModel] = Registry("zoo model")


def zoo_model(
    name: str, *, task: str, input_shape: tuple[int, ...], num_classes: int | None, description: str
) -> Callable[[Builder], Builder]:
    """Register the decorated `build` function as zoo model `name`; returns the function."""

    def decorator(builder: Builder) -> Builder:
        MODELS.register(name)(
            ZooModel(name, task, tuple(input_shape), num_classes, builder, description)
        )
        return builder

    return decorator


def scaled(channels: int, width: float) -> int:
    """A channel count `width` times as wide, at least 1 (the width multiplier of MobileNet)."""
    return max(1, int(round(channels * width)))


def same_conv(keras, weight_decay: float) -> Callable[..., Any]:
    """`conv(filters, kernel, strides, name)`: a "same"-padded Conv2D, He-normal initialised, with L2 weight
    decay, as the MLPerf Tiny references build theirs."""
    def conv(filters, kernel, strides, name):
        return keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", kernel_initializer="he_normal",
                                   kernel_regularizer=keras.regularizers.l2(weight_decay), name=name)

    return conv


def get(name: str) -> ZooModel:
    entry = MODELS.get(name)
    if entry is None:
        raise ToolchainError(
            f"unknown zoo model {name!r}", hint=f"known models: {', '.join(MODELS)}"
        )
    return entry


def leaf_layers(model) -> list:
    """All leaf layers, descending into nested models."""
    _, keras = import_tf()
    out = []
    for layer in model.layers:
        out.extend(leaf_layers(layer) if isinstance(layer, keras.Model) else [layer])
    return out


def _producers(layer) -> list:
    """Layers feeding `layer` (first call site)."""
    if not layer.inbound_nodes:
        return []
    inbound = layer.inbound_nodes[0].inbound_layers
    return list(inbound) if isinstance(inbound, (list, tuple)) else [inbound]


def _out_channels(layer) -> int:
    return int(layer.output_shape[-1])


def folded_param_count(model) -> int:
    """Parameters once every BatchNorm is folded into the Conv/Depthwise/Dense before it.

    A folded layer without a bias gains one (one per output channel). A BatchNorm that cannot be
    folded (its producer is not a weighted layer) stays as a per-channel scale and offset.
    """
    _, keras = import_tf()
    weighted = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
    total = 0
    for layer in leaf_layers(model):
        if isinstance(layer, weighted):
            total += sum(int(math.prod(w.shape)) for w in layer.weights)
        elif isinstance(layer, keras.layers.BatchNormalization):
            producers = _producers(layer)
            if len(producers) == 1 and isinstance(producers[0], weighted):
                if not producers[0].use_bias:
                    total += _out_channels(producers[0])
            else:
                total += 2 * _out_channels(layer)
    return total


def count_macs(model) -> int:
    """Multiply-accumulates of one inference: Conv, Depthwise and Dense layers only."""
    _, keras = import_tf()
    total = 0
    for layer in leaf_layers(model):
        if isinstance(layer, keras.layers.DepthwiseConv2D):  # a Conv2D subclass: test it first
            kh, kw = layer.kernel_size
            total += int(math.prod(layer.output_shape[1:])) * kh * kw
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            in_c = int(layer.input_shape[-1]) // layer.groups
            total += int(math.prod(layer.output_shape[1:])) * kh * kw * in_c
        elif isinstance(layer, keras.layers.Dense):
            total += int(math.prod(layer.output_shape[1:])) * int(layer.input_shape[-1])
    return total


# Registration happens on import; these modules use `zoo_model` defined above.
from toolchain.zoo import ad, ic, kws, vww  # noqa: E402,F401


def calibrate_batchnorm(model, samples) -> None:
    """Set every BatchNorm's moving statistics to the batch statistics of `samples`.

    A data-dependent initialisation for untrained models: without it the activations of a randomly
    initialised deep network shrink block after block (VWW's reach 1e-13), and its int8 version
    quantizes them to nothing. One forward pass in training mode with momentum 0 does it.
    """
    _, keras = import_tf()
    norms = [layer for layer in leaf_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    try:
        model(samples, training=True)
    finally:
        for layer, momentum in zip(norms, saved):
            layer.momentum = momentum
