"""Keras -> ONNX with tf2onnx (opset 17), checked against the Keras model with onnxruntime."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolchain.errors import ToolchainError
from toolchain.fsutil import write_atomic
from toolchain.tf import captured_stderr, import_tf

OPSET = 17
TOLERANCE = 1e-4
CHECK_SAMPLES = 16


@dataclass(frozen=True)
class OnnxExport:
    path: Path
    max_abs_diff: float  # largest |onnxruntime - Keras| over every output and checked sample
    outputs: tuple[str, ...]


def onnx_bytes(model, opset: int = OPSET) -> bytes:
    """The serialized ONNX model of a tf_keras model (float32 inputs, dynamic batch)."""
    tf, _ = import_tf()
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    import tf2onnx

    spec = tuple(tf.TensorSpec((None, *t.shape[1:]), tf.float32, name=name)
                 for t, name in zip(model.inputs, model.input_names))
    failure = None
    with captured_stderr() as log:
        try:
            proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
        except Exception as exc:  # tf2onnx raises many kinds
            failure = exc
    if failure is not None:
        raise ToolchainError(f"ONNX export of model {model.name!r} failed: {failure}",
                             log.text.strip().splitlines()[-1] if log.text.strip() else None) from failure
    return proto.SerializeToString()


def max_difference(onnx_model: bytes, model, inputs: list[np.ndarray]) -> tuple[float, tuple[str, ...]]:
    """Run both on `inputs` (one array per model input); the largest absolute output difference."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_model, providers=["CPUExecutionProvider"])
    feed = {i.name: np.asarray(x, np.float32) for i, x in zip(session.get_inputs(), inputs)}
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, session.run(None, feed)))
    want = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    want = dict(zip(model.output_names, want if isinstance(want, list) else [want]))
    missing = sorted(set(want) - set(got))
    if missing:  # tf2onnx keeps Keras output names; fall back to order if it did not
        got = dict(zip(model.output_names, (got[n] for n in names)))
    diff = max(float(np.max(np.abs(got[n] - want[n]))) for n in model.output_names)
    return diff, tuple(model.output_names)


def export_onnx(model, path: Path | str, *, inputs: np.ndarray | None = None, tolerance: float = TOLERANCE,
                opset: int = OPSET, seed: int = 0) -> OnnxExport:
    """Write `model` as ONNX to `path` after checking it with onnxruntime on `inputs` (default: seeded
    uniform [-1, 1] samples); a ToolchainError, and no file, if any output differs by more than `tolerance`."""
    if len(model.inputs) != 1:
        raise ToolchainError("ONNX export supports single-input models only")
    shape = tuple(model.inputs[0].shape[1:])
    if inputs is None:
        inputs = np.random.default_rng(seed).uniform(-1, 1, (CHECK_SAMPLES, *shape)).astype(np.float32)
    inputs = np.asarray(inputs, np.float32)[:CHECK_SAMPLES]
    if inputs.shape[1:] != shape:
        raise ToolchainError(f"check inputs have shape {inputs.shape}, "
                             f"the model takes [N, {', '.join(map(str, shape))}]")
    blob = onnx_bytes(model, opset)
    diff, outputs = max_difference(blob, model, [inputs])
    if not diff <= tolerance:
        raise ToolchainError(f"the ONNX model differs from the Keras model by {diff:.3g} (> {tolerance:g})",
                             "an op may be exported with different semantics; the file was not written")
    write_atomic(Path(path), blob)
    return OnnxExport(Path(path), diff, outputs)
