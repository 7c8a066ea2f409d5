"""KWS stage table: float -> channel-pruned -> distilled -> int8 (QAT), on generated keywords.

    .venv/bin/python bench/compress_kws.py [--model build/kws/train] [--out build/bench/compress_kws]

The float model is the recipe models/kws.toml (DS-CNN with a T-RecX exit and early-view assistance)
trained by `toolchain.train` (or the run given with --model). Stages: structured pruning removing half
of the MACs, distillation from a twice-as-wide DS-CNN trained first ("train large, then compress"),
quantization-aware training to full int8. Prints the stage table as text and Markdown (the one in
docs/BENCHMARKS.md), the int8 accuracy of plain PTQ of the distilled model, and a control: the pruned
model trained as long as distillation trains it, on labels only.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toolchain.compress.stages import StageSpec, compress  # noqa: E402
from toolchain.compress.table import format_rows, markdown_rows  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STAGES = [
    StageSpec("structured", {"macs_reduction": 0.5, "epochs": 8, "lr": 5e-4}),
    # alpha 0.5, T 2: on this data alpha 0.1, T 4 left the exit 3 points below the labels-only control.
    StageSpec("distill", {"teacher": "wider:2", "teacher_epochs": 16, "teacher_lr": 1e-3, "alpha": 0.5,
                          "temperature": 2.0, "epochs": 12, "lr": 5e-4}),
    StageSpec("quantize", {"method": "qat", "epochs": 3, "lr": 1e-4}),
]


def labels_only(model_path: Path, dataset, recipe) -> dict[str, float]:
    """The distill stage's student trained with the same epochs and learning rate, without a teacher."""
    from toolchain.compress.graph import load_keras
    from toolchain.compress.training import fit, recalibrate_batchnorm, scores

    options = STAGES[1].options
    model = load_keras(model_path)
    fit(model, dataset, epochs=options["epochs"], batch_size=recipe.train.batch_size, lr=options["lr"],
        seed=recipe.train.seed, exit_weight=recipe.exit.loss_weight)
    recalibrate_batchnorm(model, dataset, seed=recipe.train.seed)
    return scores(model, dataset)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="a trained KWS run or .keras (default: train models/kws.toml)")
    ap.add_argument("--out", type=Path, default=Path("build/bench/compress_kws"))
    args = ap.parse_args()

    from toolchain.compiler.arena import arena_bytes
    from toolchain.compress.graph import load_keras
    from toolchain.compress.training import tflite_scores
    from toolchain.recipe import load_recipe
    from toolchain.train.loop import load_dataset, train
    from toolchain.verify.int8 import predict_tflite

    start = time.monotonic()
    recipe = load_recipe(ROOT / "models" / "kws.toml")
    dataset = load_dataset(recipe)
    if args.model:
        model = load_keras(args.model)
    else:
        print(f"training the float model ({recipe.train.epochs} epochs) ...", flush=True)
        model = train(recipe, dataset, out_dir=args.out / "train", log=None).model
    results = compress(model, dataset, STAGES, args.out / "stages", batch_size=recipe.train.batch_size,
                       seed=recipe.train.seed, exit_weight=recipe.exit.loss_weight,
                       arena_estimator=arena_bytes, int8_runner=predict_tflite,
                       progress=lambda line: print(line, flush=True))
    ptq = tflite_scores(results[2].directory / "model.tflite", dataset, run=predict_tflite)
    control = labels_only(results[1].directory / "model.keras", dataset, recipe)
    print()
    print(format_rows(results, title=f"KWS on generated keywords ({len(dataset.x_test)} test clips)"))
    print()
    print(markdown_rows(results))
    print()
    print("int8 by plain PTQ of the distilled model (its stage's model.tflite): "
          + ", ".join(f"{name} {value:.3f}" for name, value in ptq.items()))
    print("control: the structured model trained as long as distillation trains it, on labels only: "
          + ", ".join(f"{name} {value:.3f}" for name, value in control.items()))
    print(f"total {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
