"""A float ONNX CNN (NCHW, e.g. exported from PyTorch) -> tf_keras model -> int8 .tflite.

Our own converter for a CNN subset (onnx2tf would pin numpy 1.26 / onnx 1.19 / onnxruntime 1.23, see
FACTS.md); `ONNX_OPS` lists the operators, each registered with a static `check` (attributes, constant
inputs) and a `convert`; every unsupported op or attribute of the graph is listed in one error before
anything is built. `load` reads a model (external data kept inside its directory) and rewrites what
PyTorch's exporters vary in (Identity-wrapped constants, BatchNormalization after Conv, MatMul + Add).

Layout: 4-D tensors are NCHW in ONNX and NHWC in Keras (and in the .tflite, as the compiler expects).
Weights are transposed accordingly (Conv [M, C, kh, kw] -> [kh, kw, C, M]; depthwise [C*m, 1, kh, kw]
-> [kh, kw, C, m]). An NCHW model input becomes an NHWC Keras input, so calibration data given in the
ONNX model's layout ([N, C, H, W]) is transposed to [N, H, W, C]; 4-D outputs come out NHWC. Flattening
a spatial map gives features in H, W, C order instead of ONNX's C, H, W: the converter records the
permutation and reorders the rows of the Gemm/MatMul that reads them, so no transpose op is needed.
"""
from toolchain.export.onnx_import import arith, ops, resample  # noqa: F401  (they register the converters)
from toolchain.export.onnx_import.context import ONNX_OPS
from toolchain.export.onnx_import.convert import TOLERANCE, OnnxImport, compare_with_onnxruntime, import_onnx, \
    onnx_to_keras, to_nchw, to_nhwc
from toolchain.export.onnx_import.load import load_onnx

__all__ = ["ONNX_OPS", "TOLERANCE", "OnnxImport", "compare_with_onnxruntime", "import_onnx", "load_onnx",
           "onnx_to_keras", "to_nchw", "to_nhwc"]
