"""Tiny data sets in the real on-disk formats, for the loader tests (each builds in well under a second)."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from toolchain.data.common import write_wav

SC_KEYWORDS = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes")
SC_OTHER_WORDS = ("bed", "cat")


def make_cifar(root: Path, per_batch: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    """`root/cifar-10-batches-py/` with data_batch_1..5, test_batch and batches.meta, pickled as the
    originals are (dicts with bytes keys, data uint8 [N, 3072] in R, G, B planes). Returns the images
    as uint8 NHWC and labels: {"x_train", "y_train", "x_test", "y_test"}."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"img_{i}.png".encode() for i in range(per_batch)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        batches[name] = (data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.array(labels))
    meta = {b"label_names": [n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                                    "horse", "ship", "truck")]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    train = [batches[f"data_batch_{i}"] for i in range(1, 6)]
    return {"x_train": np.concatenate([b[0] for b in train]), "y_train": np.concatenate([b[1] for b in train]),
            "x_test": batches["test_batch"][0], "y_test": batches["test_batch"][1]}


def _tone(freq: float, seconds: float, rng: np.random.Generator, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return 0.5 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(len(t))


def make_speech_commands(root: Path, per_word: int = 4, seed: int = 0) -> dict[str, set[str]]:
    """A Speech Commands v2 tree: per word folder `per_word` clips named <speaker>_nohash_<n>.wav
    (sines at a per-word pitch, some shorter than 1 s), the first clip of every word listed in
    validation_list.txt, the second in testing_list.txt, and `_background_noise_/` with 2 noise files.
    Returns {"val": ..., "test": ..., "train": ...} sets of relative paths."""
    rng = np.random.default_rng(seed)
    splits: dict[str, set[str]] = {"train": set(), "val": set(), "test": set()}
    for w, word in enumerate(SC_KEYWORDS + SC_OTHER_WORDS):
        (root / word).mkdir(parents=True)
        for n in range(per_word):
            rel = f"{word}/{n:08x}_nohash_{n}.wav"
            seconds = 1.0 if n % 2 == 0 else 0.7
            write_wav(root / rel, 16000, _tone(200 + 150 * w, seconds, rng))
            splits["val" if n == 0 else "test" if n == 1 else "train"].add(rel)
    (root / "validation_list.txt").write_text("".join(f"{r}\n" for r in sorted(splits["val"])))
    (root / "testing_list.txt").write_text("".join(f"{r}\n" for r in sorted(splits["test"])))
    (root / "_background_noise_").mkdir()
    write_wav(root / "_background_noise_" / "white_noise.wav", 16000, 0.3 * rng.standard_normal(3 * 16000))
    write_wav(root / "_background_noise_" / "running_tap.wav", 16000, _tone(90, 2.5, rng))
    return splits


def make_speech_commands_test_set(root: Path, per_class: int = 2, seed: int = 1) -> None:
    """The official 12-class test set layout: one folder per class, _silence_ and _unknown_ included."""
    rng = np.random.default_rng(seed)
    for k, name in enumerate(SC_KEYWORDS + ("_silence_", "_unknown_")):
        (root / name).mkdir(parents=True)
        for n in range(per_class):
            write_wav(root / name / f"{k:02d}_{n}.wav", 16000, _tone(300 + 100 * k, 1.0, rng))


def make_vww(root: Path, per_class: int = 10, seed: int = 0) -> None:
    """`root/person/*.png` and `root/non_person/*.png`: mostly 96x96 RGB, a few of other sizes / modes."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c, name in enumerate(("non_person", "person")):
        (root / name).mkdir(parents=True)
        for n in range(per_class):
            if n == 0:
                img = Image.fromarray(rng.integers(0, 256, (120, 80, 3), dtype=np.uint8))
            elif n == 1:
                img = Image.fromarray(rng.integers(0, 256, (96, 96), dtype=np.uint8), "L")
            else:
                img = Image.fromarray(np.full((96, 96, 3), 40 + 150 * c + n, dtype=np.uint8))
            img.save(root / name / f"COCO_{c}_{n:04d}.png")


def make_toyadmos(root: Path, seconds: float = 2.0, seed: int = 0) -> dict[str, int]:
    """A DCASE 2020 ToyCar folder: train/normal_id_0X_*.wav and test/{normal,anomaly}_id_0X_*.wav
    (a hum for normal clips, a hum plus clicks for anomalies; 16 kHz). Returns the clip counts."""
    rng = np.random.default_rng(seed)
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    counts = {"train": 0, "test_normal": 0, "test_anomaly": 0}
    for mid in ("id_01", "id_02"):
        for n in range(5):
            write_wav(root / "train" / f"normal_{mid}_{n:08d}.wav", 16000, 0.3 * _tone(120, seconds, rng))
            counts["train"] += 1
        for n in range(2):
            write_wav(root / "test" / f"normal_{mid}_{n:08d}.wav", 16000, 0.3 * _tone(120, seconds, rng))
            clicks = 0.3 * _tone(120, seconds, rng)
            clicks[:: 1600] += 0.6
            write_wav(root / "test" / f"anomaly_{mid}_{n:08d}.wav", 16000, clicks)
            counts["test_normal"] += 1
            counts["test_anomaly"] += 1
    return counts
