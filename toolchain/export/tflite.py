"""Full-integer post-training quantization of a tf_keras model to an int8 TFLite flatbuffer."""
from __future__ import annotations

import re
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from toolchain.errors import ToolchainError
from toolchain.fsutil import write_atomic
from toolchain.tf import captured_stderr, import_tf

MAX_CALIBRATION_SAMPLES = 100
CONVERSION_ATTEMPTS = 3
# Activation types: int8, or int16 activations with int8 weights (TFLite's "16x8" mode, int64 biases).
ACTIVATIONS = ("int8", "int16")


def convert_int8(
    model,
    representative: np.ndarray,
    path: Path | str | None = None,
    *,
    int8_io: bool = True,
    per_channel: bool = True,
    activations: str = "int8",
) -> bytes:
    """Quantize `model` to int8 (weights, activations and, if `int8_io`, inputs and outputs); with
    `activations="int16"`, activations (and, if `int8_io`, inputs and outputs) are int16, weights int8.

    `representative` is an array of input samples (`[N, *input_shape]`); the first
    `MAX_CALIBRATION_SAMPLES` calibrate the activation ranges. The same model and samples give
    the same bytes, except that a conversion the converter left partly in float is tried again (up to
    `CONVERSION_ATTEMPTS` times). With `path`, the flatbuffer is also written there atomically.
    """
    if activations not in ACTIVATIONS:
        raise ToolchainError(f"activations must be one of {', '.join(ACTIVATIONS)}, not {activations!r}")
    tf, _ = import_tf()
    samples = np.asarray(representative, dtype=np.float32)[:MAX_CALIBRATION_SAMPLES]
    expected = tuple(model.input_shape[1:]) if not isinstance(model.input_shape, list) else None
    if expected is None:
        raise ToolchainError("convert_int8 supports single-input models only")
    if (
        samples.ndim != len(expected) + 1
        or len(samples) == 0
        or any(e is not None and e != s for e, s in zip(expected, samples.shape[1:]))
    ):
        raise ToolchainError(
            f"representative data has shape {samples.shape}, expected [N, {', '.join(map(str, expected))}]"
            " with N >= 1"
        )

    # TFLiteConverter now and then (about one unrolled GRU/LSTM conversion in five, same model and data) leaves an
    # op in float; a fresh conversion usually does not, so a model is refused only when every attempt does.
    for _ in range(CONVERSION_ATTEMPTS):
        flatbuffer = _convert_once(tf, model, samples, int8_io, per_channel, activations)
        float_ops = _float_ops(flatbuffer)
        if not float_ops:
            break
    if float_ops:
        raise ToolchainError(
            f"int8 conversion of model {model.name!r} left {len(float_ops)} op(s) in float: "
            + ", ".join(f"{name} x{n}" for name, n in Counter(float_ops).items()),
            hint="these layers have no int8 TFLite kernel; replace them or drop them",
        )
    if path is not None:
        write_atomic(Path(path), flatbuffer)
    return flatbuffer


def _convert_once(tf, model, samples: np.ndarray, int8_io: bool, per_channel: bool, activations: str) -> bytes:
    """One TFLiteConverter run; its own failure is a one-line ToolchainError with the converter's telling lines."""
    def representative_dataset():
        for sample in samples:
            yield [sample[None].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    if activations == "int16":
        ops_16x8 = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        converter.target_spec.supported_ops = [ops_16x8]
        io_type = tf.int16 if int8_io else tf.float32
    else:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io_type = tf.int8 if int8_io else tf.float32
    converter.inference_input_type = io_type
    converter.inference_output_type = io_type
    if not per_channel:
        converter._experimental_disable_per_channel = True

    failure: Exception | None = None
    with captured_stderr() as log, warnings.catch_warnings():
        # Raised for every int8-input model: the input range comes from calibration instead.
        warnings.filterwarnings("ignore", "Statistics for quantized inputs were expected")
        try:
            flatbuffer = converter.convert()
        except Exception as exc:  # the converter raises many types (ConverterError, ValueError...)
            failure = exc
    if failure is not None:
        raise ToolchainError(
            f"int8 conversion of model {model.name!r} failed:\n"
            + _summarize(f"{failure}\n{log.text}"),
            hint="every layer must map to a TFLite builtin op that has an int8 kernel",
        ) from failure
    return flatbuffer


def _float_ops(flatbuffer: bytes) -> list[str]:
    """Names of the ops, other than (de)quantizers, that read or write float tensors.

    The converter silently keeps an op in float when it has no int8 kernel, even with
    TFLITE_BUILTINS_INT8; such a model is not full-integer and cannot be compiled.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    dtypes = {t["index"]: t["dtype"] for t in interpreter.get_tensor_details()}
    found = []
    for op in interpreter._get_ops_details():
        if op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            continue
        tensors = [i for i in (*op["inputs"], *op["outputs"]) if i >= 0]
        if any(np.dtype(dtypes[i]).kind == "f" for i in tensors if i in dtypes):
            found.append(op["op_name"])
    return found


_KEY_LINE = re.compile(r"error:|TF Select ops:|not supported|Exception|Error")


def _summarize(text: str, max_lines: int = 8, width: int = 300) -> str:
    """The converter's few telling lines (it also dumps MLIR locations thousands of characters long)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    key = [line for line in lines if _KEY_LINE.search(line) and not line.startswith("loc(")]
    picked = list(dict.fromkeys(key or lines[-max_lines:]))[:max_lines]
    return "\n".join("  " + (line if len(line) <= width else line[: width - 3] + "...") for line in picked)
