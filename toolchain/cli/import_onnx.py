"""tinyml import MODEL.onnx --calibration DATA.npy -o OUT.tflite [--keras OUT.keras]"""
from __future__ import annotations

from pathlib import Path

from toolchain.cli.base import Command, check_output_file, command, positive_float
from toolchain.cli.export import load_array


@command("import")
class Import(Command):
    help = "turn a float ONNX CNN (NCHW, e.g. from PyTorch) into a full-int8 .tflite (NHWC) the compiler accepts"

    def add_arguments(self, p):
        p.add_argument("model", type=Path, help="float ONNX model (torch.onnx.export or dynamo=True; its external "
                       "data files must be inside its directory)")
        p.add_argument("--calibration", type=Path, required=True,
                       help=".npy of representative inputs in the ONNX model's layout ([N, C, H, W] for images); "
                       "a model exported with batch 1 is run sample by sample")
        p.add_argument("-o", "--out", type=Path, required=True, help="int8 .tflite to write (input NHWC)")
        p.add_argument("--keras", type=Path, help="also save the converted float Keras model here")
        p.add_argument("--tolerance", type=positive_float, default=1e-4,
                       help="largest |Keras - onnxruntime| accepted on the calibration data (default 1e-4)")

    def run(self, args):
        from toolchain.export.onnx_import import import_onnx

        check_output_file(args.out, "-o/--out")
        check_output_file(args.keras, "--keras")

        result = import_onnx(args.model, load_array(args.calibration, "calibration data"), args.out,
                             tolerance=args.tolerance)
        model = result.keras_model
        print(f"converted {args.model}: {len(model.layers)} Keras layers; onnxruntime vs Keras max |diff| "
              f"{result.max_abs_diff:.3g} on {len(result.calibration_nhwc)} calibration samples")
        if args.keras:
            from toolchain.compress.graph import save_keras

            save_keras(model, args.keras)
            print(f"wrote {args.keras}")
        shape = "x".join(str(d) for d in model.inputs[0].shape[1:])
        print(f"wrote {args.out}: full-int8 TFLite, {len(result.tflite):,} bytes, input {shape} (NHWC)")
        return 0
