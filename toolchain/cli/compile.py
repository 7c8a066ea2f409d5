"""tinyml compile MODEL.tflite -o OUTDIR [--target ref] [--check N]"""
from __future__ import annotations

from pathlib import Path

from toolchain.cli.base import Command, add_bands_argument, check_output_dir, command, non_negative_int, probability
from toolchain.pipeline.api import KERNEL_TARGETS, REFERENCES
from toolchain.report.memory import ram_rows
from toolchain.report.table import format_table


def print_compile_summary(result, tflm=None, tflm_note: str = "") -> None:
    plan = result.plan
    rows = [[layer.index, layer.op, "x".join(map(str, layer.outputs[0])), layer.macs,
             f"{layer.band_rows}-row bands" if layer.band_rows else ""] for layer in plan.layers]
    print(format_table(["#", "op", "output", "MACs", "runs in"], rows, title=f"{plan.source} -> {result.out_dir}"))
    print()
    print(format_table(["memory", "bytes"], [
        *ram_rows(plan, tflm=tflm),
        ["weights + quantization constants (flash)", plan.weights_bytes],
    ]))
    if tflm_note:
        print(f"(no TFLM comparison: {tflm_note})")
    print(f"\n{plan.layers_generated} layers ({plan.ops_in_model} ops in the model), {plan.macs:,} MACs; "
          f"wrote model.c, model.h, model_plan.json, kernels/")


def run_check(model: Path, compiled, samples: int, seed: int = 0, threshold: float = 1.0) -> bool:
    from toolchain.pipeline.api import check_stage, exit_threshold

    report = check_stage(model, compiled, samples=samples, seed=seed, exit_threshold=exit_threshold(threshold))
    print(report.summary())
    if threshold < 1.0:
        print(f"exit taken per sample at threshold {threshold}: {report.exits}")
    return report.ok


@command("compile")
class Compile(Command):
    help = "compile an int8 .tflite model to C (static memory plan, no interpreter, no malloc)"

    def add_arguments(self, p):
        p.add_argument("model", type=Path, help="fully int8-quantized .tflite file")
        p.add_argument("-o", "--out", type=Path, required=True, help="output directory")
        p.add_argument("--kernels", "--target", dest="kernels", choices=KERNEL_TARGETS, default="ref",
                       help="kernel path: ref (portable C, default), dsp (Armv7E-M/Armv8-M DSP: M4, M7, M33), "
                            "mve (Cortex-M55 Helium), cmsis-nn (calls CMSIS_NN_ROOT=<your CMSIS-NN checkout>)")
        p.add_argument("--reference", choices=REFERENCES,
                       help="whose rounding to reproduce and check against: litert (LiteRT BUILTIN_REF, the default) "
                            "or tflm (tflite-micro and CMSIS-NN: FULLY_CONNECTED rounds twice; the default of "
                            "--kernels cmsis-nn)")
        add_bands_argument(p)
        p.add_argument("--check", type=non_negative_int, default=0, metavar="N",
                       help="run N random inputs on the host and compare bit-exactly with LiteRT BUILTIN_REF")
        p.add_argument("--early-exit", action="store_true",
                       help="outputs other than the final one are early exits (int8 softmax) the code may return at")
        p.add_argument("--threshold", type=probability, default=1.0,
                       help="with --check: leave at an exit when its top probability >= this, in [0, 1] "
                       "(default 1.0: never)")

    def run(self, args):
        from toolchain.pipeline.api import compile_stage, tflm_arena

        check_output_dir(args.out, "-o/--out")
        result = compile_stage(args.model, args.out, target=args.kernels, early_exit=args.early_exit,
                               reference=args.reference, host_check=args.check > 0, bands=args.bands)
        print_compile_summary(result, *tflm_arena(args.model))
        for ex in result.plan.exits:
            print(f"early exit {ex.index}: output '{ex.output}' after {ex.layers} layers, "
                  f"{ex.macs:,} MACs (full model {result.plan.macs:,})")
        if args.check > 0:
            return 0 if run_check(args.model, result, args.check, threshold=args.threshold) else 1
        return 0
