"""The MLPerf Tiny / DCASE 2020 anomaly-detection front end in numpy, and the per-clip dataset it feeds.

Recipe (DCASE 2020 task 2 baseline `common.file_to_vector_array`, used by MLPerf Tiny AD):
  librosa.feature.melspectrogram(y, sr, n_fft=1024, hop_length=512, n_mels=128, power=2.0):
  centred frames (n_fft/2 reflect padding on both sides), periodic Hann window, |rfft|^2, Slaney mel
  filters with Slaney area normalisation, 0 Hz to sr/2;
  log_mel = 20 / power * log10(mel + float eps)  (i.e. 10 log10, in dB);
  vectors = 5 consecutive frames concatenated, frame-major (values 0..127 are frame t, 128..255
  frame t+1, ...) -> [frames - 4, 640].
"""
from __future__ import annotations

import functools
import sys
from dataclasses import dataclass

import numpy as np

from toolchain.data import Dataset

N_FFT = 1024
HOP = 512
N_MELS = 128
POWER = 2.0
N_FRAMES = 5
VECTOR_SIZE = N_MELS * N_FRAMES  # 640
EPS = sys.float_info.epsilon
CLASSES = ("normal", "anomaly")


@dataclass(frozen=True)
class AnomalyDataset(Dataset):
    """A Dataset whose test vectors remember their clip, so AUC can be computed per clip.

    x_test holds every 5-frame vector of every test clip, y_test the clip's label per vector (0 normal,
    1 anomalous); test_clip[i] is the index of the clip vector i came from (into test_clip_names).
    """

    test_clip: np.ndarray  # int64 [N_test]
    test_clip_names: tuple[str, ...]

    def clip_scores(self, vector_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(score, label) per test clip: the mean of its vectors' scores (e.g. reconstruction MSE)."""
        return clip_scores(vector_scores, self.test_clip, self.y_test)


def anomaly_dataset(name: str, train: list[np.ndarray], val: list[np.ndarray], test: list[np.ndarray],
                    test_labels: list[int], test_names: list[str]) -> AnomalyDataset:
    """Stack per-clip [n_i, 640] vector arrays into an AnomalyDataset (train and val hold normal clips)."""
    def stack(clips: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([np.zeros((0, VECTOR_SIZE), np.float32), *clips])

    x_train, x_val, x_test = stack(train), stack(val), stack(test)
    counts = [len(c) for c in test]
    return AnomalyDataset(
        name, "anomaly", (VECTOR_SIZE,), CLASSES,
        x_train, np.zeros(len(x_train), np.int64),
        x_val, np.zeros(len(x_val), np.int64),
        x_test, np.repeat(np.asarray(test_labels, np.int64), counts),
        test_clip=np.repeat(np.arange(len(test), dtype=np.int64), counts),
        test_clip_names=tuple(test_names),
    )


def clip_scores(vector_scores: np.ndarray, clip: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean score, label) per clip from per-vector scores, clip indices and labels."""
    n = int(clip.max()) + 1 if len(clip) else 0
    counts = np.bincount(clip, minlength=n)
    sums = np.bincount(clip, weights=np.asarray(vector_scores, dtype=np.float64), minlength=n)
    clip_labels = np.zeros(n, dtype=np.int64)
    clip_labels[clip] = labels
    return sums / np.maximum(counts, 1), clip_labels


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (higher score = more anomalous; ties count half): Mann-Whitney U."""
    from scipy.stats import rankdata

    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    n_pos, n_neg = int((labels == 1).sum()), int((labels == 0).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both normal and anomalous samples")
    ranks = rankdata(scores)
    u = ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _hz_to_mel_slaney(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, np.log(6.4) / 27.0
    linear = hz / f_sp
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep, linear)


def _mel_to_hz_slaney(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


@functools.lru_cache(maxsize=None)
def mel_filters(sample_rate: int, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """[n_mels, n_fft/2 + 1], the same weights as librosa.filters.mel(sr, n_fft, n_mels) (Slaney)."""
    fft_hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    mel_hz = _mel_to_hz_slaney(np.linspace(0.0, _hz_to_mel_slaney(sample_rate / 2.0), n_mels + 2))
    widths = np.diff(mel_hz)
    ramps = mel_hz[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return weights * (2.0 / (mel_hz[2:] - mel_hz[:-2]))[:, None]


def log_mel(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """[frames, 128] dB log-mel power spectrogram of one mono clip (frames = 1 + len // 512)."""
    samples = np.asarray(samples, dtype=np.float64)
    padded = np.pad(samples, N_FFT // 2, mode="reflect" if len(samples) > N_FFT // 2 else "constant")
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    index = np.arange(n_frames)[:, None] * HOP + np.arange(N_FFT)[None, :]
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)
    power = np.abs(np.fft.rfft(padded[index] * window, axis=-1)) ** POWER
    mel = power @ mel_filters(sample_rate).T
    return 20.0 / POWER * np.log10(mel + EPS)


def vectors(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """float32 [frames - 4, 640]: 5 consecutive log-mel frames per vector (empty if the clip is too short)."""
    spec = log_mel(samples, sample_rate)
    count = len(spec) - N_FRAMES + 1
    if count < 1:
        return np.zeros((0, VECTOR_SIZE), dtype=np.float32)
    stacked = np.concatenate([spec[t : t + count] for t in range(N_FRAMES)], axis=1)
    return stacked.astype(np.float32)
