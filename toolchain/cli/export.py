"""tinyml export MODEL.keras -o OUT.tflite --calibration DATA.npy [--onnx OUT.onnx]"""
from __future__ import annotations

from pathlib import Path

from toolchain.cli.base import Command, check_output_file, command, positive_float
from toolchain.errors import ToolchainError


def load_array(path: Path, what: str):
    import numpy as np

    try:
        return np.load(path)
    except (OSError, ValueError) as exc:
        raise ToolchainError(f"cannot read {what} {path}: {exc}",
                             "give a .npy file of shape [N, *input shape]") from exc


@command("export")
class Export(Command):
    help = "write a Keras model as a full-int8 .tflite (the compiler's input) and, with --onnx, as ONNX"

    def add_arguments(self, p):
        p.add_argument("model", type=Path, help="a saved .keras model (or a `tinyml train` run directory)")
        p.add_argument("-o", "--out", type=Path, required=True, help="int8 .tflite to write")
        p.add_argument("--calibration", type=Path, required=True,
                       help=".npy of representative inputs [N, *input shape] (the first 100 calibrate)")
        p.add_argument("--onnx", type=Path, help="also write this ONNX file (tf2onnx, opset 17), checked against "
                       "Keras with onnxruntime on the calibration samples")
        p.add_argument("--tolerance", type=positive_float, default=1e-4,
                       help="largest |ONNX - Keras| accepted (default 1e-4)")

    def run(self, args):
        from toolchain.compress.graph import load_keras
        from toolchain.export.tflite import convert_int8

        check_output_file(args.out, "-o/--out")
        check_output_file(args.onnx, "--onnx")
        model = load_keras(args.model)
        calibration = load_array(args.calibration, "calibration data")
        flatbuffer = convert_int8(model, calibration, args.out)
        print(f"wrote {args.out}: full-int8 TFLite, {len(flatbuffer):,} bytes")
        if args.onnx:
            from toolchain.export.onnx_export import export_onnx

            result = export_onnx(model, args.onnx, inputs=calibration, tolerance=args.tolerance)
            print(f"wrote {args.onnx}: ONNX opset 17, outputs {', '.join(result.outputs)}; onnxruntime vs Keras "
                  f"max |diff| {result.max_abs_diff:.3g} (tolerance {args.tolerance:g})")
        return 0
