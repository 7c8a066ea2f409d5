"""Visual Wake Words, the MLPerf Tiny `vw_coco2014_96` folders: person/ and non_person/ images.

Images are converted to RGB, resized to 96x96 (bilinear) when they are not already, and scaled by
1/255 as the MLPerf recipe's `rescale` does: float32 in [0, 1], NHWC [N, 96, 96, 3]. Classes follow
Keras `flow_from_directory`'s alphabetical order: 0 non_person, 1 person. The split is a seeded,
per-class 80/10/10 cut. Memory: 110 KB per image as float32 (the full set, ~110k images, needs
~12 GB): `max_per_class` loads a seeded subset.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from toolchain.data import Dataset
from toolchain.data.common import Progress, dataset_source, missing_data_error, stratified_split
from toolchain.errors import ToolchainError

CLASSES = ("non_person", "person")
SIZE = 96
EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
URL = ("https://www.silabs.com/public/files/github/machine_learning/benchmarks/datasets/vw_coco2014_96.tar.gz "
       "(or build it with the TF models repo's visualwakewords scripts from COCO 2014)")


def _images_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS)


def _find_root(root: Path | None) -> Path:
    expected = [f"{c}/*.jpg (or .png) with any size; 96x96 RGB as in vw_coco2014_96" for c in CLASSES]
    if root is None:
        raise missing_data_error("vww96", "(no root given)", expected, URL)
    for folder in (root, root / "vw_coco2014_96"):
        if all(_images_in(folder / c) for c in CLASSES):
            return folder
    raise missing_data_error("vww96", root, expected, URL)


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if image.size != (SIZE, SIZE):
                image = image.resize((SIZE, SIZE), Image.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise ToolchainError(f"vww96: cannot read image {path}: {exc}", "remove or replace the file") from exc


@dataset_source("vww96", kind="real", task="classification",
                description="Visual Wake Words 96x96x3 (vw_coco2014_96), float 0..1 (MLPerf Tiny VWW)")
def load_vww(root: Path | None, seed: int, *, max_per_class: int | None = None,
             fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> Dataset:
    root = _find_root(root)
    paths, labels = [], []
    for k, name in enumerate(CLASSES):
        found = _images_in(root / name)
        if max_per_class is not None and len(found) > max_per_class:
            keep = np.random.default_rng([seed, k]).choice(len(found), max_per_class, replace=False)
            found = [found[i] for i in sorted(keep)]
        paths += found
        labels += [k] * len(found)
    progress = Progress("vww96: reading images", len(paths))
    x = np.empty((len(paths), SIZE, SIZE, 3), dtype=np.float32)
    for i, path in enumerate(paths):
        x[i] = _read_image(path) * np.float32(1 / 255)
        progress.advance()
    progress.close()
    y = np.asarray(labels, dtype=np.int64)
    train, val, test = stratified_split(y, fractions, seed)
    return Dataset("vww96", "classification", (SIZE, SIZE, 3), CLASSES,
                   x[train], y[train], x[val], y[val], x[test], y[test])
