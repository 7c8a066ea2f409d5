"""Synthetic machine sounds for anomaly detection, in the `toyadmos` loader's feature space.

A toy-car-like motor at 16 kHz: a harmonic series on a slowly drifting fundamental, a gear whine at
a non-integer multiple of it, periodic wheel clicks, broadband motor noise and a little room noise.
`machine_id` fixes the machine's profile (fundamental, harmonic amplitudes, gear ratio, click rate);
each clip varies it slightly. Anomalous clips carry one fault: a rattle (resonant impulses), a
frequency wobble, missing harmonics, loud noise bursts, or a bearing tone; `severity` scales them.

Clips become 5-frame log-mel vectors exactly as in `toyadmos` (x float32 [N, 640], dB). Training and
validation hold normal clips only (`val_fraction` of `train_clips`); test holds `test_clips` normal
and `test_clips` anomalous clips, y per vector, and the returned AnomalyDataset keeps each test
vector's clip (`test_clip`) for the per-clip AUC. Cached under `cache_dir` (default build/data/).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolchain.data import logmel
from toolchain.data.common import Progress, cached_arrays, dataset_source, split_indices
from toolchain.errors import ToolchainError
from toolchain.fields import Count, Fraction, NonNegative, NonNegativeInt

VERSION = 1  # bump when the generated sound changes
SAMPLE_RATE = 16000
N_HARMONICS = 24
FAULTS = ("rattle", "wobble", "missing_harmonic", "noise_bursts", "bearing_tone")


@dataclass(frozen=True)
class Profile:
    f0: float
    harmonics: np.ndarray  # relative amplitude of harmonic 1..N_HARMONICS
    gear_ratio: float
    gear_level: float
    click_hz: float
    noise_level: float


def machine_profile(machine_id: int) -> Profile:
    rng = np.random.default_rng([machine_id, 7])
    k = np.arange(1, N_HARMONICS + 1)
    return Profile(
        f0=rng.uniform(90, 180),
        harmonics=k ** -rng.uniform(0.6, 1.0) * rng.uniform(0.3, 1.0, N_HARMONICS),
        gear_ratio=rng.uniform(5.3, 9.7),
        gear_level=rng.uniform(0.1, 0.3),
        click_hz=rng.uniform(6, 14),
        noise_level=rng.uniform(0.05, 0.12),
    )


def _smooth_noise(rng: np.random.Generator, n: int, points_per_s: float) -> np.ndarray:
    """A smooth random curve with zero mean and unit-ish amplitude (linear interpolation of knots)."""
    knots = max(2, int(n / SAMPLE_RATE * points_per_s) + 2)
    return np.interp(np.arange(n), np.linspace(0, n - 1, knots), rng.uniform(-1, 1, knots))


def _colored_noise(rng: np.random.Generator, n: int, tilt: float) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 20.0)
    noise = np.fft.irfft(spectrum * (freqs / 1000.0) ** (-tilt / 2), n)
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def _resonant_burst(rng: np.random.Generator, length: int, freq: float, decay_s: float) -> np.ndarray:
    t = np.arange(length) / SAMPLE_RATE
    return np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)) * np.exp(-t / decay_s)


def render(profile: Profile, rng: np.random.Generator, seconds: float, fault: str | None = None,
           severity: float = 1.0) -> np.ndarray:
    """One clip, float32 mono at 16 kHz, RMS about 0.1."""
    n = int(seconds * SAMPLE_RATE)
    f0 = profile.f0 * rng.uniform(0.95, 1.05) * (1 + 0.015 * _smooth_noise(rng, n, 0.5))
    if fault == "wobble":
        rate, depth = rng.uniform(2, 8), rng.uniform(0.01, 0.03) * severity
        f0 = f0 * (1 + depth * np.sin(2 * np.pi * rate * np.arange(n) / SAMPLE_RATE))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    amps = profile.harmonics * rng.uniform(0.75, 1.25, N_HARMONICS)
    if fault == "missing_harmonic":
        k = 1 + int(rng.integers(1, 10))
        amps[k] *= max(0.0, 1.0 - rng.uniform(0.6, 0.8) * severity)
    signal = _harmonics(phase, amps * (np.arange(1, N_HARMONICS + 1) * profile.f0 * 1.1 < SAMPLE_RATE / 2), rng)
    signal += profile.gear_level * np.sin(profile.gear_ratio * phase) * (1 + 0.2 * _smooth_noise(rng, n, 2))
    signal /= np.sqrt(np.mean(signal**2)) + 1e-12

    clicks = np.zeros(n)
    period = SAMPLE_RATE / (profile.click_hz * rng.uniform(0.95, 1.05))
    burst = _resonant_burst(rng, 160, 3000.0, 0.002)
    for start in np.arange(rng.uniform(0, period), n - len(burst), period).astype(int):
        clicks[start : start + len(burst)] += burst * rng.uniform(0.7, 1.3)
    signal += 0.5 * rng.uniform(0.8, 1.2) * clicks

    noise = _colored_noise(rng, n, tilt=1.0) * profile.noise_level * rng.uniform(0.7, 1.3)
    if fault == "noise_bursts":
        envelope = np.ones(n)
        for _ in range(int(rng.integers(2, 6) * seconds / 10 + 1)):
            start, length = int(rng.integers(n)), int(rng.uniform(0.05, 0.3) * SAMPLE_RATE)
            envelope[start : start + length] += rng.uniform(1, 2.5) * severity
        noise *= envelope
    signal += noise
    if fault == "rattle":
        resonance = rng.uniform(1500, 5000)
        for start in rng.uniform(0, n - 800, int(rng.uniform(2, 8) * seconds)).astype(int):
            signal[start : start + 800] += (rng.uniform(0.1, 0.4) * severity
                                            * _resonant_burst(rng, 800, resonance * rng.uniform(0.95, 1.05), 0.004))
    if fault == "bearing_tone":
        freq = profile.f0 * rng.uniform(11.2, 17.8)
        signal += rng.uniform(0.03, 0.08) * severity * np.sin(2 * np.pi * freq * np.arange(n) / SAMPLE_RATE)
    signal += 0.01 * _colored_noise(rng, n, tilt=2.0)
    return (0.1 * signal / (np.sqrt(np.mean(signal**2)) + 1e-12)).astype(np.float32)


def _harmonics(phase: np.ndarray, amps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """sum_k amps[k-1] * sin(k * phase + random offset), by the angle-addition recurrence (no sin per k)."""
    s1, c1 = np.sin(phase), np.cos(phase)
    sk, ck = s1.copy(), c1.copy()
    out = np.zeros_like(phase)
    for amp in amps:
        offset = rng.uniform(0, 2 * np.pi)
        out += amp * (sk * np.cos(offset) + ck * np.sin(offset))
        sk, ck = sk * c1 + ck * s1, ck * c1 - sk * s1
    return out


def _generate(seed: int, machine_id: int, train_clips: int, test_clips: int, clip_seconds: float,
              severity: float, val_fraction: float) -> dict[str, np.ndarray]:
    profile = machine_profile(machine_id)
    faults: list[str | None] = [None] * (train_clips + test_clips)
    fault_rng = np.random.default_rng([seed, 1])
    faults += [FAULTS[i] for i in fault_rng.integers(len(FAULTS), size=test_clips)]
    progress = Progress("synthetic_machine: rendering", len(faults))
    clips = []
    for i, fault in enumerate(faults):
        clips.append(logmel.vectors(render(profile, np.random.default_rng([seed, 2, i]), clip_seconds, fault,
                                           severity), SAMPLE_RATE))
        progress.advance()
    progress.close()
    train_idx, val_idx = split_indices(train_clips, (1 - val_fraction, val_fraction), seed)
    test = clips[train_clips:]
    ds = logmel.anomaly_dataset(
        "synthetic_machine", [clips[i] for i in train_idx], [clips[i] for i in val_idx], test,
        [0] * test_clips + [1] * test_clips, [f"normal_{i:04d}" for i in range(test_clips)]
        + [f"anomaly_{fault}_{i:04d}" for i, fault in enumerate(faults[train_clips + test_clips :])],
    )
    return {"x_train": ds.x_train, "x_val": ds.x_val, "x_test": ds.x_test, "y_test": ds.y_test,
            "test_clip": ds.test_clip, "test_clip_names": np.array(ds.test_clip_names)}


@dataset_source("synthetic_machine", kind="generated", task="anomaly",
                description="synthetic toy-car motor sounds, normal vs faulty, 640-dim log-mel vectors (AD-shaped)")
def load_synthetic_machine(root: Path | None, seed: int, *, machine_id: NonNegativeInt = 1,
                           train_clips: Count = 80, test_clips: Count = 40, clip_seconds: NonNegative = 10.0,
                           severity: NonNegative = 1.0, val_fraction: Fraction = 0.1,
                           cache_dir: Path | str | None = None) -> logmel.AnomalyDataset:
    if train_clips < 2 or test_clips < 1 or clip_seconds < 0.2:
        raise ToolchainError("synthetic_machine: needs train_clips >= 2, test_clips >= 1, clip_seconds >= 0.2")
    params = {"version": VERSION, "machine_id": machine_id, "train_clips": train_clips, "test_clips": test_clips,
              "clip_seconds": clip_seconds, "severity": severity, "val_fraction": val_fraction}
    a = cached_arrays(cache_dir, "synthetic_machine", params, seed,
                      lambda: _generate(seed, machine_id, train_clips, test_clips, clip_seconds, severity,
                                        val_fraction))
    return logmel.AnomalyDataset(
        "synthetic_machine", "anomaly", (logmel.VECTOR_SIZE,), logmel.CLASSES,
        a["x_train"], np.zeros(len(a["x_train"]), np.int64), a["x_val"], np.zeros(len(a["x_val"]), np.int64),
        a["x_test"], a["y_test"].astype(np.int64),
        test_clip=a["test_clip"].astype(np.int64), test_clip_names=tuple(str(s) for s in a["test_clip_names"]),
    )
