"""The MLPerf Tiny KWS front end in numpy: 1 s at 16 kHz -> MFCC [49, 10, 1].

Recipe (mlcommons/tiny keyword_spotting `get_dataset.py`, which calls `tf.signal`):
  periodic Hann window of 480 samples (30 ms), stride 320 (20 ms), no padding -> 49 frames;
  |rfft| with fft length 512 (the next power of two; a *magnitude*, not power, spectrogram);
  40 triangular mel filters 20-4000 Hz as `tf.signal.linear_to_mel_weight_matrix` builds them
  (HTK mel scale, unnormalised, DC bin weight 0); log(mel + 1e-6);
  DCT-II as `tf.signal.mfccs_from_log_mel_spectrograms`, first 10 coefficients.
That DCT is the unnormalised DCT-II times 1/sqrt(2 * 40): orthonormal for coefficients 1..9, and
coefficient 0 is sqrt(2) larger than the orthonormal one. We keep TF's scaling so features (and the
shipped int8 input scale 0.585 / zero point 83) match the MLPerf reference model.

Clips are peak-normalised first, as the MLPerf loader does (it divides each clip by its maximum).
"""
from __future__ import annotations

import functools

import numpy as np

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
FRAME_LENGTH = 480
FRAME_STEP = 320
FFT_LENGTH = 512
NUM_MEL_BINS = 40
LOWER_EDGE_HZ = 20.0
UPPER_EDGE_HZ = 4000.0
NUM_COEFFICIENTS = 10
LOG_OFFSET = 1e-6
NUM_FRAMES = 1 + (CLIP_SAMPLES - FRAME_LENGTH) // FRAME_STEP  # 49
FEATURE_SHAPE = (NUM_FRAMES, NUM_COEFFICIENTS, 1)


def fit_length(samples: np.ndarray, n: int = CLIP_SAMPLES) -> np.ndarray:
    """Zero-pad at the end or trim to n samples."""
    samples = np.asarray(samples, dtype=np.float32)
    if len(samples) >= n:
        return samples[:n]
    return np.pad(samples, (0, n - len(samples)))


def peak_normalize(samples: np.ndarray) -> np.ndarray:
    """Scale so max |x| = 1 (MLPerf divides by the positive peak; for speech that is the same)."""
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    return samples / peak if peak > 0 else samples


def _hertz_to_mel(hz):
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


@functools.lru_cache(maxsize=None)
def mel_matrix(
    num_mel_bins: int = NUM_MEL_BINS,
    num_spectrogram_bins: int = FFT_LENGTH // 2 + 1,
    sample_rate: int = SAMPLE_RATE,
    lower_edge_hz: float = LOWER_EDGE_HZ,
    upper_edge_hz: float = UPPER_EDGE_HZ,
) -> np.ndarray:
    """[num_spectrogram_bins, num_mel_bins], the same weights as tf.signal.linear_to_mel_weight_matrix."""
    linear_hz = np.linspace(0.0, sample_rate / 2.0, num_spectrogram_bins)[1:]
    bins_mel = _hertz_to_mel(linear_hz)[:, None]
    edges = np.linspace(_hertz_to_mel(lower_edge_hz), _hertz_to_mel(upper_edge_hz), num_mel_bins + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel - lower) / (center - lower)
    falling = (upper - bins_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.vstack([np.zeros((1, num_mel_bins)), weights])


@functools.lru_cache(maxsize=None)
def dct_matrix(num_mel_bins: int = NUM_MEL_BINS, num_coefficients: int = NUM_COEFFICIENTS) -> np.ndarray:
    """[num_mel_bins, num_coefficients]: TF's DCT-II scaled by 1/sqrt(2 N) (see the module doc)."""
    n = np.arange(num_mel_bins)[:, None]
    k = np.arange(num_coefficients)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * num_mel_bins)) / np.sqrt(2.0 * num_mel_bins)


@functools.lru_cache(maxsize=None)
def _hann(length: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)  # periodic, as tf.signal.hann_window


def mfcc(clips: np.ndarray, batch: int = 256) -> np.ndarray:
    """MFCCs of [N, 16000] (or one [16000]) float clips -> float32 [N, 49, 10, 1] (or [49, 10, 1])."""
    clips = np.asarray(clips, dtype=np.float64)
    single = clips.ndim == 1
    clips = np.atleast_2d(clips)
    if clips.shape[1] != CLIP_SAMPLES:
        raise ValueError(f"MFCC front end expects clips of {CLIP_SAMPLES} samples, got {clips.shape[1]}")
    starts = np.arange(NUM_FRAMES) * FRAME_STEP
    frame_index = starts[:, None] + np.arange(FRAME_LENGTH)[None, :]
    projection = mel_matrix()
    out = np.empty((len(clips), NUM_FRAMES, NUM_COEFFICIENTS, 1), dtype=np.float32)
    for i in range(0, len(clips), batch):
        frames = clips[i : i + batch][:, frame_index] * _hann(FRAME_LENGTH)
        magnitude = np.abs(np.fft.rfft(frames, n=FFT_LENGTH, axis=-1))
        log_mel = np.log(magnitude @ projection + LOG_OFFSET)
        out[i : i + batch, :, :, 0] = log_mel @ dct_matrix()
    return out[0] if single else out
