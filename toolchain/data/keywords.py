"""Synthetic keyword spotting: the MLPerf keywords spoken by espeak-ng, through the MLPerf MFCC front end.

Same classes and class order as `speech_commands` (down, go, left, no, off, on, right, stop, up, yes,
_silence_, _unknown_) and the same features (MFCC [49, 10, 1], see `mfcc.py`), so a KWS model, its
quantisation and its firmware can be exercised without the real data set.

Each keyword and _unknown_ clip is one espeak-ng utterance with a random English voice and voice
variant, speed 120-200 words/min and pitch 20-80, resampled from 22.05 to 16 kHz, trimmed, placed at
a random time in the 1 s clip with a random gain, plus white/pink/brown noise at a random SNR
(`snr_db`). _unknown_ utterances are other Speech Commands words (bed, bird, ..., numbers).
_silence_ clips are noise only. Clips are peak-normalised like the real loader's. Split: seeded,
per class, 80/10/10. The arrays are cached under `cache_dir` (default build/data/).
"""
from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from toolchain.data import Dataset, mfcc
from toolchain.data.common import Progress, cached_arrays, dataset_from_arrays, dataset_source, split_arrays
from toolchain.data.speech_commands import CLASSES, SILENCE, UNKNOWN
from toolchain.errors import MissingToolError, ToolchainError
from toolchain.fields import Count

VERSION = 1  # bump when the generated data changes, so old caches are not reused
UNKNOWN_WORDS = (
    "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow", "zero", "one", "two",
    "three", "four", "five", "six", "seven", "eight", "nine", "learn", "follow", "forward", "backward", "visual",
)
VOICES = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
            "klatt", "klatt2", "klatt3", "croak", "Alex", "Annie", "Andy", "edward", "steph", "linda")
SPEED_RANGE = (120, 200)
PITCH_RANGE = (20, 80)
GAIN_RANGE = (0.3, 1.0)


def _espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise MissingToolError("dataset 'keywords' needs espeak-ng, which is not installed",
                               "apt-get install espeak-ng")
    return exe


def _espeak_version(exe: str) -> str:
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout
    return out.split("Data at")[0].strip()


def _parse_wav(blob: bytes) -> tuple[int, np.ndarray]:
    """espeak-ng --stdout writes a WAV header with placeholder sizes: take everything after 'data'."""
    at = blob.find(b"data", 12)
    if not blob.startswith(b"RIFF") or at < 0:
        raise ValueError("not a WAV stream")
    rate = int.from_bytes(blob[24:28], "little")
    pcm = blob[at + 8 :]
    pcm = pcm[: len(pcm) // 2 * 2]
    return rate, np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def _speak(exe: str, word: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    cmd = [exe, "--stdout", "-v", voice, "-s", str(speed), "-p", str(pitch), word]
    proc = subprocess.run(cmd, capture_output=True, timeout=60)
    try:
        rate, samples = _parse_wav(proc.stdout)
    except ValueError:
        samples = np.zeros(0, np.float32)
        rate = 0
    if proc.returncode != 0 or len(samples) == 0:
        raise ToolchainError(f"espeak-ng failed: {' '.join(cmd)}",
                             proc.stderr.decode(errors="replace").strip() or "no audio produced")
    from scipy.signal import resample_poly

    if rate != mfcc.SAMPLE_RATE:
        g = np.gcd(rate, mfcc.SAMPLE_RATE)
        samples = resample_poly(samples, mfcc.SAMPLE_RATE // g, rate // g).astype(np.float32)
    loud = np.flatnonzero(np.abs(samples) > 0.02 * np.abs(samples).max())
    return samples[loud[0] : loud[-1] + 1] if len(loud) else samples


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit-RMS white, pink (1/f) or brown (1/f^2) noise."""
    kind = rng.integers(3)
    white = rng.standard_normal(n)
    if kind > 0:
        spectrum = np.fft.rfft(white)
        freqs = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
        white = np.fft.irfft(spectrum / freqs ** (kind / 2.0), n)
    return (white / (np.sqrt(np.mean(white**2)) + 1e-12)).astype(np.float32)


def _compose(utterance: np.ndarray | None, rng: np.random.Generator, snr_db: tuple[float, float]) -> np.ndarray:
    n = mfcc.CLIP_SAMPLES
    clip = np.zeros(n, np.float32)
    noise = _noise(rng, n)
    if utterance is None:
        clip = noise * rng.uniform(0.01, 0.3)
    else:
        word = utterance[:n] * rng.uniform(*GAIN_RANGE)
        start = rng.integers(0, n - len(word) + 1)
        clip[start : start + len(word)] = word
        rms = np.sqrt(np.mean(word**2)) + 1e-12
        clip += noise * rms * 10 ** (-rng.uniform(*snr_db) / 20)
    return mfcc.peak_normalize(clip)


def _generate(seed: int, samples_per_class: int, snr_db: tuple[float, float], workers: int) -> dict[str, np.ndarray]:
    exe = _espeak()
    rng = np.random.default_rng([seed, 0])
    labels = np.repeat(np.arange(len(CLASSES)), samples_per_class)
    jobs = []  # (index, word, voice, speed, pitch) for every spoken clip
    for i, label in enumerate(labels):
        name = CLASSES[label]
        if name == SILENCE:
            continue
        word = UNKNOWN_WORDS[rng.integers(len(UNKNOWN_WORDS))] if name == UNKNOWN else name
        voice = f"{VOICES[rng.integers(len(VOICES))]}+{VARIANTS[rng.integers(len(VARIANTS))]}"
        jobs.append((i, word, voice, int(rng.integers(SPEED_RANGE[0], SPEED_RANGE[1] + 1)),
                     int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1))))
    utterances: dict[int, np.ndarray] = {}
    progress = Progress("keywords: espeak-ng", len(jobs))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for (i, *_), samples in zip(jobs, pool.map(lambda job: _speak(exe, *job[1:]), jobs)):
            utterances[i] = samples
            progress.advance()
    progress.close()
    clips = np.stack([_compose(utterances.get(i), np.random.default_rng([seed, 1, i]), snr_db)
                      for i in range(len(labels))])
    x = mfcc.mfcc(clips)
    return split_arrays(x, labels, seed)


@dataset_source("keywords", kind="generated", task="classification",
                description="MLPerf KWS keywords spoken by espeak-ng, 12 classes, MFCC [49,10,1]")
def load_keywords(root: Path | None, seed: int, *, samples_per_class: Count = 150,
                  snr_db: tuple[float, float] = (5.0, 30.0), workers: Count = 2,
                  cache_dir: Path | str | None = None) -> Dataset:
    if samples_per_class < 1:
        raise ToolchainError("keywords: samples_per_class must be at least 1")
    snr = (float(snr_db[0]), float(snr_db[1]))
    params = {"version": VERSION, "samples_per_class": samples_per_class, "snr_db": snr,
              "espeak": _espeak_version(_espeak())}
    arrays = cached_arrays(cache_dir, "keywords", params, seed,
                           lambda: _generate(seed, samples_per_class, snr, workers))
    return dataset_from_arrays("keywords", "classification", CLASSES, arrays)

