"""The int8 evaluation: a full-int8 .tflite run by LiteRT's reference kernels over a dataset, its outputs
dequantized so the threshold sweep treats them like the float model's.

For an int8 softmax (scale 1/256) the dequantized comparison `score >= threshold` equals the integer
one the device makes (`compiler.exits.threshold_to_int8`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from toolchain.compiler.quant import quantize_array
from toolchain.train.evaluate import TOLERANCE, Sweep, path_macs, sweep
from toolchain.zoo.exits import EXIT_OUTPUT, FINAL_OUTPUT


def evaluate_int8(model, dataset, thresholds, tflite_path: Path | None = None, *, split: str = "test",
                  tolerance: float = TOLERANCE) -> Sweep:
    """Like `train.evaluate.evaluate`, on `model`'s full-int8 conversion (calibrated on training samples) run by
    LiteRT's reference kernels; the .tflite is also written to `tflite_path` if given."""
    from toolchain.export.tflite import convert_int8

    flatbuffer = convert_int8(model, dataset.x_train, tflite_path)
    x, y = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
    outputs = predict_tflite(flatbuffer, x)
    if len(outputs) == 1:
        (final_probs,) = outputs.values()
        exit_probs = None
    else:
        exit_probs, final_probs = outputs[EXIT_OUTPUT], outputs[FINAL_OUTPUT]
    return sweep(exit_probs, final_probs, y, thresholds, path_macs(model), tolerance)


def predict_tflite(tflite: bytes | Path | str, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run an (int8) TFLite model with LiteRT's reference kernels, one sample at a time; returns the
    dequantized outputs by signature name (converted multi-output models reorder their tensors)."""
    from toolchain.verify.reference import ReferenceModel

    ref = ReferenceModel(tflite)
    (inp,) = ref.inputs
    results: dict[str, list] = {name: [] for name in ref.output_names}
    for sample in np.asarray(x, dtype=np.float32):
        feed = _quantize(sample[None], inp)
        for name, out, value in zip(ref.output_names, ref.outputs, ref.run([feed])):
            results[name].append(_dequantize(value, out)[0])
    return {name: np.stack(values) for name, values in results.items()}


def _quantize(x: np.ndarray, tensor) -> np.ndarray:
    if tensor.quant is None or tensor.dtype == "float32":
        return x.astype(np.float32)
    return quantize_array(x, tensor.scale, tensor.zero_point, np.dtype(tensor.dtype))


def _dequantize(q: np.ndarray, tensor) -> np.ndarray:
    if tensor.quant is None or tensor.dtype == "float32":
        return q.astype(np.float64)
    return tensor.scale * (q.astype(np.float64) - tensor.zero_point)
