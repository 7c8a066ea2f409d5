"""tinyml demo: the built-in default job, end to end on what exists today.

KWS DS-CNN (MLPerf Tiny) -> full-int8 TFLite -> C (static plan) -> host run, bit-exact with LiteRT.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from toolchain.cli.base import Command, command
from toolchain.cli.compile import print_compile_summary, run_check


def stage(i: int, n: int, text: str) -> float:
    print(f"[{i}/{n}] {text}", flush=True)
    return time.monotonic()


@command("demo")
class Demo(Command):
    help = "run the built-in default job (KWS DS-CNN -> int8 -> C -> bit-exact host check)"

    def add_arguments(self, p):
        p.add_argument("--model", default="kws", help="zoo model (default kws)")
        p.add_argument("--out", type=Path, default=Path("build/demo"), help="output directory (default build/demo)")
        p.add_argument("--check", type=int, default=20, metavar="N", help="random inputs to compare (default 20)")
        p.add_argument("--seed", type=int, default=0)

    def run(self, args):
        from toolchain import zoo
        from toolchain.compiler import compile_model
        from toolchain.export.tflite import convert_int8

        entry = zoo.get(args.model)
        start = stage(1, 4, f"building {entry.name} ({entry.description}) with seeded random weights")
        from toolchain.tf import import_tf

        _, keras = import_tf()
        keras.utils.set_random_seed(args.seed)
        model = entry.build()
        stage(2, 4, "post-training quantization to full int8 (random calibration data)")
        rep = np.random.default_rng(args.seed).uniform(-1, 1, (64, *entry.input_shape)).astype(np.float32)
        zoo.calibrate_batchnorm(model, rep)
        tflite = args.out / f"{entry.name}.tflite"
        convert_int8(model, rep, tflite)
        stage(3, 4, f"compiling {tflite} to C")
        result = compile_model(tflite, args.out / "c")
        print_compile_summary(result)
        stage(4, 4, f"running {args.check} random inputs on the host and on LiteRT BUILTIN_REF")
        ok = run_check(tflite, args.out / "c", args.check, seed=args.seed)
        print(f"done in {time.monotonic() - start:.1f} s; artifacts in {args.out}")
        return 0 if ok else 1
