"""Compression of trained Keras models: pruning, distillation, quantization, and the stage runner.

- `magnitude`: unstructured magnitude pruning (tensorflow-model-optimization, polynomial schedule).
- `channels`: structured channel pruning (L1 ranking, channels removed through BN / depthwise / next
  layers / residual adds / exit slices, a smaller model rebuilt) and its inverse, `widen`.
- `distill`: knowledge distillation from a teacher's final output into every output of a student.
- `quantize`: post-training int8 (`toolchain.export.tflite.convert_int8`) and quantization-aware training.
- `stages`: `compress(model, dataset, stages, out_dir)` runs them in any order and measures each stage;
  the caller hands in the arena estimator and the int8 runner (compression imports neither compiler nor
  verifier).

Importing this package is cheap; TensorFlow loads when a function that needs it runs.
"""
from toolchain.compress.stages import STAGES, CompressionStep, StageSpec, compress, parse_stages

__all__ = ["STAGES", "CompressionStep", "StageSpec", "compress", "parse_stages"]
