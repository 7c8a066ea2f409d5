"""Google Speech Commands v2 as MLPerf Tiny KWS uses it: 12 classes, MFCC [49, 10, 1].

Classes, in the MLPerf reference model's output order (TFDS label order): down, go, left, no, off,
on, right, stop, up, yes, _silence_, _unknown_. Per split, _silence_ and _unknown_ each add
ceil(10% of that split's keyword clips) (TF `input_data.py` percentages): unknown clips are drawn
(seeded) from the other word folders, silence clips are 1 s crops of `_background_noise_/*.wav`.
Splits follow `validation_list.txt` / `testing_list.txt`; everything else is training. With
`test_dir=` the official 12-class test set (speech_commands_test_set_v0.02, one folder per class
including `_silence_` and `_unknown_`) replaces the list-based test split, as in MLPerf.

Every clip is peak-normalised, zero-padded or trimmed to 1 s, optionally time-shifted (training
only) and, on the training split only, mixed with background noise (80% of clips, volume uniform
in [0, 0.1], then clipped to [-1, 1]) before the MFCC front end in `mfcc.py`. The augmentation is
drawn once at load time (seeded), not per epoch.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from toolchain.data import Dataset, mfcc
from toolchain.data.common import Progress, dataset_source, missing_data_error, read_wav
from toolchain.errors import ToolchainError

KEYWORDS = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes")
SILENCE, UNKNOWN = "_silence_", "_unknown_"
CLASSES = (*KEYWORDS, SILENCE, UNKNOWN)
NOISE_DIR = "_background_noise_"
CHUNK = 512  # clips held as waveforms at once (the whole training set would be ~2 GB)
URL = ("http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz "
       "(and speech_commands_test_set_v0.02.tar.gz for test_dir=)")


def _check_root(root: Path | None) -> Path:
    expected = [
        "validation_list.txt, testing_list.txt",
        f"{NOISE_DIR}/*.wav (background noise, 16 kHz)",
        *(f"{word}/*.wav" for word in KEYWORDS),
        "other word folders (bed/, bird/, ...) for _unknown_",
    ]
    if root is None:
        raise missing_data_error("speech_commands", "(no root given)", expected, URL)
    for folder in (root, root / "speech_commands_v0.02"):
        if (
            (folder / "validation_list.txt").is_file()
            and (folder / "testing_list.txt").is_file()
            and any((folder / NOISE_DIR).glob("*.wav"))
            and all(any((folder / w).glob("*.wav")) for w in KEYWORDS)
        ):
            return folder
    raise missing_data_error("speech_commands", root, expected, URL)


def _read_list(path: Path) -> set[str]:
    return {line.strip().replace("\\", "/") for line in path.read_text().splitlines() if line.strip()}


def _read_clip(path: Path) -> np.ndarray:
    rate, samples = read_wav(path)
    if rate != mfcc.SAMPLE_RATE:
        raise ToolchainError(f"speech_commands: {path} is sampled at {rate} Hz", "expected 16 kHz WAV files")
    return samples


def _noise_crop(noises: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    noise = noises[rng.integers(len(noises))]
    if len(noise) <= mfcc.CLIP_SAMPLES:
        return mfcc.fit_length(noise)
    start = rng.integers(len(noise) - mfcc.CLIP_SAMPLES + 1)
    return noise[start : start + mfcc.CLIP_SAMPLES]


def _shift(clip: np.ndarray, samples: int) -> np.ndarray:
    if samples == 0:
        return clip
    out = np.zeros_like(clip)
    if samples > 0:
        out[samples:] = clip[:-samples]
    else:
        out[:samples] = clip[-samples:]
    return out


def _split_files(root: Path, seed: int, unknown_percentage: float) -> dict[str, list[tuple[str, int]]]:
    """{split: [(relative path, label index) ...]} for keyword and unknown clips."""
    validation, testing = _read_list(root / "validation_list.txt"), _read_list(root / "testing_list.txt")
    words = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("_"))
    known: dict[str, list[tuple[str, int]]] = {"train": [], "val": [], "test": []}
    unknown: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for word in words:
        for wav in sorted((root / word).glob("*.wav")):
            rel = f"{word}/{wav.name}"
            split = "val" if rel in validation else "test" if rel in testing else "train"
            if word in KEYWORDS:
                known[split].append((rel, KEYWORDS.index(word)))
            else:
                unknown[split].append(rel)
    out = {}
    for i, split in enumerate(("train", "val", "test")):
        count = min(math.ceil(len(known[split]) * unknown_percentage / 100), len(unknown[split]))
        chosen = np.random.default_rng([seed, 1, i]).choice(len(unknown[split]), count, replace=False)
        out[split] = known[split] + [(unknown[split][j], CLASSES.index(UNKNOWN)) for j in sorted(chosen)]
    return out


@dataset_source("speech_commands", kind="real", task="classification",
                description="Speech Commands v2, 12 classes, MLPerf MFCC [49,10,1] (MLPerf Tiny KWS)")
def load_speech_commands(
    root: Path | None,
    seed: int,
    *,
    background_noise: bool = True,
    background_frequency: float = 0.8,
    background_volume: float = 0.1,
    time_shift_ms: float = 0.0,
    silence_percentage: float = 10.0,
    unknown_percentage: float = 10.0,
    test_dir: Path | str | None = None,
) -> Dataset:
    root = _check_root(root)
    noises = [_read_clip(p) for p in sorted((root / NOISE_DIR).glob("*.wav"))]
    items = _split_items(root, seed, unknown_percentage, silence_percentage,
                         Path(test_dir) if test_dir is not None else None)
    progress = Progress("speech_commands: reading clips", sum(len(v) for v in items.values()))
    arrays = {}
    for i, split in enumerate(("train", "val", "test")):
        rng = np.random.default_rng([seed, 2, i])
        features = [np.zeros((0, *mfcc.FEATURE_SHAPE), np.float32)]
        for start in range(0, len(items[split]), CHUNK):
            chunk = items[split][start : start + CHUNK]
            waves = np.stack([
                mfcc.peak_normalize(_noise_crop(noises, rng) if path is None else mfcc.fit_length(_read_clip(path)))
                for path, _ in chunk
            ])
            if split == "train":
                waves = _augment(waves, noises, rng, background_noise, background_frequency, background_volume,
                                 time_shift_ms)
            features.append(mfcc.mfcc(waves))
            progress.advance(len(chunk))
        arrays[split] = (np.concatenate(features), np.array([label for _, label in items[split]], dtype=np.int64))
    progress.close()
    return Dataset(
        "speech_commands", "classification", mfcc.FEATURE_SHAPE, CLASSES,
        *arrays["train"], *arrays["val"], *arrays["test"],
    )


def _split_items(root: Path, seed: int, unknown_percentage: float, silence_percentage: float,
                 test_dir: Path | None) -> dict[str, list[tuple[Path | None, int]]]:
    """{split: [(wav path, or None for a silence clip cut from background noise, label) ...]}."""
    files = _split_files(root, seed, unknown_percentage)
    items: dict[str, list[tuple[Path | None, int]]] = {}
    for split, entries in files.items():
        items[split] = [(root / rel, label) for rel, label in entries]
        keyword_clips = sum(1 for _, label in entries if label < len(KEYWORDS))
        items[split] += [(None, CLASSES.index(SILENCE))] * math.ceil(keyword_clips * silence_percentage / 100)
    if test_dir is not None:
        items["test"] = [(test_dir / rel, label) for rel, label in _official_test_files(test_dir)]
    return items


def _augment(waves, noises, rng, background_noise, frequency, volume, time_shift_ms) -> np.ndarray:
    max_shift = int(round(time_shift_ms * mfcc.SAMPLE_RATE / 1000))
    out = waves.copy()
    for j in range(len(out)):
        if max_shift:
            out[j] = _shift(out[j], int(rng.integers(-max_shift, max_shift + 1)))
        if background_noise and rng.uniform() < frequency:
            out[j] = np.clip(out[j] + rng.uniform(0, volume) * _noise_crop(noises, rng), -1.0, 1.0)
    return out


def _official_test_files(test_dir: Path) -> list[tuple[str, int]]:
    files = [(f"{name}/{wav.name}", k) for k, name in enumerate(CLASSES)
             for wav in sorted((test_dir / name).glob("*.wav"))]
    if not all(any((test_dir / name).glob("*.wav")) for name in CLASSES):
        raise missing_data_error("speech_commands (test_dir)", test_dir, [f"{c}/*.wav" for c in CLASSES], URL)
    return files
