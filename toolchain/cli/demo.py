"""tinyml demo: the built-in default job, end to end on what exists today.

KWS DS-CNN (MLPerf Tiny) -> full-int8 TFLite -> C (static plan) -> firmware -> QEMU Cortex-M4,
bit-exact with LiteRT on device, measured.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from toolchain.cli.base import Command, command
from toolchain.cli.run import print_run


@command("demo")
class Demo(Command):
    help = "run the built-in default job (KWS DS-CNN -> int8 -> C -> firmware -> QEMU, bit-exact, measured)"

    def add_arguments(self, p):
        p.add_argument("--model", default="kws", help="zoo model (default kws)")
        p.add_argument("--board", default="mps2-an386", help="emulated board (default mps2-an386)")
        p.add_argument("--out", type=Path, default=Path("build/demo"), help="output directory (default build/demo)")
        p.add_argument("--samples", type=int, default=8, help="random inputs to run on the device (default 8)")
        p.add_argument("--seed", type=int, default=0)

    def run(self, args):
        from toolchain import zoo
        from toolchain.boards import get_board
        from toolchain.deploy import deploy
        from toolchain.export.tflite import convert_int8
        from toolchain.tf import import_tf

        entry, board = zoo.get(args.model), get_board(args.board)
        start = time.monotonic()
        steps = iter(range(1, 6))

        def stage(text: str) -> None:
            print(f"[{next(steps)}/5] {text}", flush=True)

        stage(f"building {entry.name} ({entry.description}) with seeded random weights")
        _, keras = import_tf()
        keras.utils.set_random_seed(args.seed)
        model = entry.build()
        rep = np.random.default_rng(args.seed).uniform(-1, 1, (64, *entry.input_shape)).astype(np.float32)
        zoo.calibrate_batchnorm(model, rep)
        stage("post-training quantization to full int8 (random calibration data)")
        tflite = args.out / f"{entry.name}.tflite"
        convert_int8(model, rep, tflite)
        result = deploy(tflite, board, args.out, samples=args.samples, seed=args.seed, progress=stage)
        print()
        print_run(result)
        print(f"\ndone in {time.monotonic() - start:.1f} s; artifacts in {args.out} "
              f"(C sources in {args.out / 'c'}, firmware in {args.out / ('fw-' + board.name)})")
        return 0 if result.bit_exact else 1
