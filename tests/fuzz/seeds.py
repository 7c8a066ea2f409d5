"""The fuzzer's seeds: small int8 models the op tests build, one per operator we compile."""
from __future__ import annotations

from pathlib import Path

import op_models as om

SEED_MODELS = {
    "conv": om.conv2d, "depthwise": om.depthwise, "dense": om.dense, "avgpool": om.avgpool,
    "maxpool": om.maxpool, "mean": om.mean, "add": om.add, "softmax": om.softmax, "pad": om.zero_padding,
    "concat": om.concatenation, "reshape": om.reshape, "two_outputs": om.two_outputs,
}


def make_seeds(out_dir: Path, names=None) -> list[Path]:
    """Convert the seed models to int8 .tflite files in `out_dir` (kept: an existing file is reused)."""
    from toolchain.export.tflite import convert_int8

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names or SEED_MODELS:
        path = out_dir / f"{name}.tflite"
        if not path.exists():
            model = SEED_MODELS[name]()
            convert_int8(model, om.representative(model.input_shape[1:]), path)
        paths.append(path)
    return paths
