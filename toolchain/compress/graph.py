"""Helpers on functional tf_keras models: copy, walk in topological order, save, load."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolchain.errors import ToolchainError
from toolchain.tf import import_tf

WEIGHTED = ("Conv2D", "DepthwiseConv2D", "Dense")  # the layers pruning and QAT touch


@dataclass(frozen=True)
class Call:
    """One call of a layer in the graph: the Keras tensors it reads and writes."""

    layer: Any
    inputs: list
    outputs: list


def calls(model) -> list[Call]:
    """Every layer call of a functional model, producers before consumers (InputLayers included)."""
    tf, keras = import_tf()
    if not getattr(model, "_is_graph_network", False):
        raise ToolchainError(f"model {model.name!r} is not a functional Keras model",
                             "compression rebuilds the layer graph: build models with keras.Input(...)")
    order = []
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            order.append(Call(node.layer, list(node.keras_inputs), tf.nest.flatten(node.outputs)))
    return order


def is_builtin(layer) -> bool:
    """A layer class of tf_keras itself (not a custom layer such as the zoo's ChannelSlice)."""
    _, keras = import_tf()
    return getattr(keras.layers, type(layer).__name__, None) is type(layer)


def kind(layer) -> str:
    """The layer's class name when it is a tf_keras layer, else 'custom:<name>'."""
    return type(layer).__name__ if is_builtin(layer) else f"custom:{type(layer).__name__}"


def copy_model(model):
    """An independent copy (same architecture, same weights, no shared layers)."""
    _, keras = import_tf()
    from toolchain.zoo.layers import CUSTOM_OBJECTS

    with keras.utils.custom_object_scope(CUSTOM_OBJECTS):
        clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def output_names(model) -> list[str]:
    return list(model.output_names)


def final_output(model) -> str:
    """The output a teacher's knowledge comes from: `final` if the model has one, else its last output."""
    names = output_names(model)
    return "final" if "final" in names else names[-1]


def load_keras(path: Path | str):
    """A saved .keras model (or a `tinyml train` run directory) with the zoo's custom layers."""
    from toolchain.train.loop import load_model

    try:
        return load_model(path)
    except (OSError, ValueError) as exc:
        raise ToolchainError(f"cannot load Keras model {path}: {exc}") from exc


def save_keras(model, path: Path | str) -> Path:
    """Save as .keras atomically (a crash never leaves half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".keras", dir=path.parent)
    os.close(fd)
    try:
        model.save(tmp, overwrite=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
