"""tinyml export MODEL.keras -o OUT.tflite --calibration DATA.npy [--onnx OUT.onnx] [--allow-lambda]
[--custom-objects FILE.py]"""
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


def load_custom_objects(path: Path) -> dict:
    """The Keras classes and functions a model file names, from a user's Python file: its `CUSTOM_OBJECTS`
    dict if it has one, else its public module-level names. Importing the file runs it."""
    import importlib.util

    if path.suffix != ".py" or not path.is_file():
        raise ToolchainError(f"--custom-objects {path}: not a Python file", "give the .py file defining the classes")
    spec = importlib.util.spec_from_file_location(f"tinyml_custom_objects_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code may raise anything
        raise ToolchainError(f"--custom-objects {path} failed to run: {type(exc).__name__}: {exc}") from exc
    objects = getattr(module, "CUSTOM_OBJECTS", None)
    if objects is None:
        return {name: value for name, value in vars(module).items() if not name.startswith("_")}
    if not isinstance(objects, dict) or not all(isinstance(k, str) for k in objects):
        raise ToolchainError(f"--custom-objects {path}: CUSTOM_OBJECTS must be a dict from names to classes")
    return dict(objects)


@command("export")
class Export(Command):
    help = "write a Keras model as a full-int8 .tflite (the compiler's input) and, with --onnx, as ONNX"

    def add_arguments(self, p):
        p.add_argument("model", type=Path, help="a saved .keras model (or a `tinyml train` run directory)")
        p.add_argument("-o", "--out", type=Path, required=True, help="int8 .tflite to write")
        p.add_argument("--calibration", type=Path, required=True,
                       help=".npy of representative inputs [N, *input shape] (the first 100 calibrate)")
        p.add_argument("--activations", choices=("int8", "int16"), default="int8",
                       help="activation (and input/output) type: int8, or int16 with int8 weights (TFLite's 16x8 "
                       "quantization, for accuracy-sensitive models such as audio)")
        p.add_argument("--onnx", type=Path, help="also write this ONNX file (tf2onnx, opset 17), checked against "
                       "Keras with onnxruntime on the calibration samples")
        p.add_argument("--tolerance", type=positive_float, default=1e-4,
                       help="largest |ONNX - Keras| accepted (default 1e-4)")
        p.add_argument("--allow-lambda", action="store_true",
                       help="load Lambda layers; this RUNS the Python code stored in the model file, so use it only "
                       "for a model you trust")
        p.add_argument("--custom-objects", type=Path, metavar="FILE.py",
                       help="a Python file defining the model's custom layers/functions (its CUSTOM_OBJECTS dict, "
                       "else its module-level names); it is RUN to load them")

    def run(self, args):
        from toolchain.compress.graph import load_keras
        from toolchain.export.tflite import convert_int8

        check_output_file(args.out, "-o/--out")
        check_output_file(args.onnx, "--onnx")
        custom = load_custom_objects(args.custom_objects) if args.custom_objects else None
        model = load_keras(args.model, allow_lambda=args.allow_lambda, custom_objects=custom)
        calibration = load_array(args.calibration, "calibration data")
        flatbuffer = convert_int8(model, calibration, args.out, activations=args.activations)
        kind = "full-int8" if args.activations == "int8" else "int16 activations, int8 weights"
        print(f"wrote {args.out}: {kind} TFLite, {len(flatbuffer):,} bytes")
        if args.onnx:
            from toolchain.export.onnx_export import export_onnx

            result = export_onnx(model, args.onnx, inputs=calibration, tolerance=args.tolerance)
            print(f"wrote {args.onnx}: ONNX opset 17, outputs {', '.join(result.outputs)}; onnxruntime vs Keras "
                  f"max |diff| {result.max_abs_diff:.3g} (tolerance {args.tolerance:g})")
        return 0
