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


MAX_CONFIG_BYTES = 64 * 2**20


def _saved_classes(path: Path) -> tuple[bool, set[str]] | None:
    """(has a Lambda layer, names of its non-Keras classes) from a .keras file's config, read as JSON only;
    None when `path` is not a .keras archive."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            size = archive.getinfo("config.json").file_size  # reading stops there: a zip bomb stops there too
            if size > MAX_CONFIG_BYTES:
                raise ToolchainError(f"{path}: its config.json unpacks to {size} bytes (a model's is kilobytes)",
                                     "re-save the model with model.save(path.keras)")
            config = json.loads(archive.read("config.json"))
    except RecursionError as exc:
        raise ToolchainError(f"{path}: its config.json is nested too deeply to be a model",
                             "re-save the model with model.save(path.keras)") from exc
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    has_lambda, custom = False, set()
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            module = item.get("module")
            if "class_name" in item and isinstance(module, str):
                has_lambda |= item["class_name"] == "Lambda"
                # Keras imports any other module it names (a registered name absent, without asking, safe_mode or
                # not) and calls from_config on what it finds there: each is custom until the user supplies it.
                if module.split(".")[0] not in ("keras", "tf_keras"):
                    custom.add(str(item.get("registered_name") or item["class_name"]))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return has_lambda, custom


def load_keras(path: Path | str, *, allow_lambda: bool = False, custom_objects: dict | None = None):
    """A saved .keras model (or a `tinyml train` run directory) with the zoo's custom layers and
    `custom_objects`. A Lambda layer is Python bytecode stored in the file, so it is deserialised (run) only
    with `allow_lambda`; without it the model is refused before any of its code runs."""
    _, keras = import_tf()
    from toolchain.train.loop import MODEL_FILE
    from toolchain.zoo.layers import CUSTOM_OBJECTS

    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise ToolchainError(f"no Keras model at {path}", "give a .keras file or a `tinyml train` run directory")
    objects = {**CUSTOM_OBJECTS, **(custom_objects or {})}
    saved = _saved_classes(path)
    if saved is None and not allow_lambda:
        raise ToolchainError(f"{path} is not a .keras archive: legacy H5/SavedModel files load Lambda layers "
                             "(run their code) without asking", "re-save it as .keras, or pass --allow-lambda if "
                             "you trust the file")
    has_lambda, custom = saved or (False, set())
    if has_lambda and not allow_lambda:
        raise ToolchainError(f"{path} has a Lambda layer: loading it runs Python code stored in the file",
                             "if you trust the file, pass --allow-lambda")
    unknown = sorted(name for name in custom if name not in objects and name.split(">")[-1] not in objects)
    if unknown:
        raise ToolchainError(f"{path} uses custom classes {', '.join(unknown)}",
                             "define them in a Python file and pass --custom-objects FILE.py")
    try:
        return keras.models.load_model(path, custom_objects=objects, compile=False, safe_mode=not allow_lambda)
    except Exception as exc:  # an untrusted config makes Keras raise anything (AttributeError, KeyError...)
        text = " ".join(str(exc).split())
        if "safe_mode" in text:  # a Python lambda elsewhere than in a Lambda layer, e.g. as an activation
            raise ToolchainError(f"{path} holds a Python lambda: loading it runs code stored in the file",
                                 "if you trust the file, pass --allow-lambda") from exc
        raise ToolchainError(f"cannot load Keras model {path}: {text[:300]}") from exc


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
