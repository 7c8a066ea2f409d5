"""Synthetic visual wake words: 96x96x3 scenes with or without a drawn person-like figure.

person: a stick-and-blob figure (head disc, torso, two arms and two legs as thick strokes) with a
random pose (limb angles, lean), size (35-90 px tall), position, skin/clothes colours, over a random
textured background with 0-2 distractor shapes. non_person: the same kind of background with 1-6
random shapes (rectangles, ellipses, lines, polygons) and nothing person-like arranged as a figure.
Images get a light random blur; values are float32 in [0, 1] like the `vww96` loader's (rescale
1/255). Classes: 0 non_person, 1 person (as vww96). Split: seeded, per class, 80/10/10. Cached under
`cache_dir` (default build/data/).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from toolchain.data import Dataset
from toolchain.data.common import Progress, cached_arrays, dataset_from_arrays, dataset_source, split_arrays
from toolchain.errors import ToolchainError
from toolchain.fields import Count

VERSION = 1  # bump when the generated images change
CLASSES = ("non_person", "person")
SIZE = 96
SKIN = ((255, 224, 189), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 58, 30))


def _color(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def _background(rng: np.random.Generator) -> np.ndarray:
    """uint8 [96, 96, 3]: a two-colour gradient, smooth blotches, and either grain or stripes."""
    from PIL import Image

    t = np.linspace(0, 1, SIZE)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * t[None, :] + np.sin(angle) * t[:, None]
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-9)
    a, b = np.array(_color(rng), float), np.array(_color(rng), float)
    img = a + (b - a) * ramp[..., None]
    cells = int(rng.integers(3, 9))
    blotch = rng.uniform(-1, 1, (cells, cells, 3))
    blotch = np.stack([np.asarray(Image.fromarray(blotch[..., c].astype(np.float32), "F")
                                  .resize((SIZE, SIZE), Image.BICUBIC)) for c in range(3)], -1)
    img += blotch * rng.uniform(10, 60)
    if rng.uniform() < 0.3:
        period = rng.uniform(4, 16)
        stripes = np.sin(2 * np.pi * (np.cos(angle + 1) * np.arange(SIZE)[None, :]
                                      + np.sin(angle + 1) * np.arange(SIZE)[:, None]) / period)
        img += stripes[..., None] * rng.uniform(10, 40)
    img += rng.normal(0, rng.uniform(0, 12), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _random_shape(draw, rng: np.random.Generator) -> None:
    kind = rng.integers(4)
    x0, y0 = rng.uniform(-10, SIZE, 2)
    w, h = rng.uniform(6, 50, 2)
    color = _color(rng)
    if kind == 0:
        draw.rectangle([x0, y0, x0 + w, y0 + h], fill=color)
    elif kind == 1:
        draw.ellipse([x0, y0, x0 + w, y0 + h], fill=color)
    elif kind == 2:
        draw.line([x0, y0, x0 + rng.uniform(-50, 50), y0 + rng.uniform(-50, 50)], fill=color,
                  width=int(rng.integers(1, 7)))
    else:
        points = [(x0 + rng.uniform(0, w), y0 + rng.uniform(0, h)) for _ in range(int(rng.integers(3, 7)))]
        draw.polygon(points, fill=color)


def _person(draw, rng: np.random.Generator) -> None:
    height = rng.uniform(35, 90)
    cx = rng.uniform(0.15, 0.85) * SIZE
    top = rng.uniform(-0.1 * height, SIZE - 0.8 * height)
    lean = rng.normal(0, 0.12)
    cos, sin = np.cos(lean), np.sin(lean)

    def at(u: float, v: float) -> tuple[float, float]:
        """Body coordinates (u across, v down, in heights) -> pixels, leaned about the head."""
        x, y = u * height, v * height
        return cx + cos * x - sin * y, top + sin * x + cos * y

    def limb(start: tuple[float, float], angle: float, length: float, width: float, color) -> None:
        end = (start[0] + np.sin(angle) * length * height, start[1] + np.cos(angle) * length * height)
        draw.line([start, end], fill=color, width=max(2, int(width * height)))
        r = width * height / 2
        draw.ellipse([end[0] - r, end[1] - r, end[0] + r, end[1] + r], fill=color)

    skin = SKIN[rng.integers(len(SKIN))]
    shirt, pants = _color(rng), _color(rng)
    torso_w = rng.uniform(0.16, 0.24)
    for side in (-1, 1):  # legs first, so the torso covers their tops
        limb(at(side * torso_w / 4, 0.52), lean + side * rng.uniform(0.0, 0.45), 0.45, 0.09, pants)
    draw.polygon([at(-torso_w / 2, 0.2), at(torso_w / 2, 0.2), at(torso_w / 2.3, 0.56), at(-torso_w / 2.3, 0.56)],
                 fill=shirt)
    for side in (-1, 1):
        limb(at(side * torso_w / 2, 0.23), lean + side * rng.uniform(0.1, 2.6), rng.uniform(0.3, 0.38), 0.07,
             shirt if rng.uniform() < 0.5 else skin)
    head_r = rng.uniform(0.08, 0.1) * height
    hx, hy = at(0, 0.1)
    draw.ellipse([hx - head_r, hy - head_r, hx + head_r, hy + head_r], fill=skin)


def _image(is_person: bool, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFilter

    image = Image.fromarray(_background(rng))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(0, 3) if is_person else rng.integers(1, 7))):
        _random_shape(draw, rng)
    if is_person:
        _person(draw, rng)
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.0)))
    return np.asarray(image, dtype=np.uint8)


def _generate(seed: int, samples_per_class: int) -> dict[str, np.ndarray]:
    labels = np.repeat(np.arange(len(CLASSES)), samples_per_class)
    images = np.empty((len(labels), SIZE, SIZE, 3), np.uint8)
    progress = Progress("synthetic_vww: drawing", len(labels))
    for i, label in enumerate(labels):
        images[i] = _image(bool(label), np.random.default_rng([seed, i]))
        progress.advance()
    progress.close()
    return split_arrays(images, labels, seed)


@dataset_source("synthetic_vww", kind="generated", task="classification",
                description="drawn person / non_person 96x96x3 scenes, float 0..1 (VWW-shaped)")
def load_synthetic_vww(root: Path | None, seed: int, *, samples_per_class: Count = 1000,
                       cache_dir: Path | str | None = None) -> Dataset:
    if samples_per_class < 1:
        raise ToolchainError("synthetic_vww: samples_per_class must be at least 1")
    params = {"version": VERSION, "samples_per_class": samples_per_class}
    arrays = cached_arrays(cache_dir, "synthetic_vww", params, seed, lambda: _generate(seed, samples_per_class))
    scaled = {k: (v.astype(np.float32) * np.float32(1 / 255) if k.startswith("x") else v) for k, v in arrays.items()}
    return dataset_from_arrays("synthetic_vww", "classification", CLASSES, scaled)
