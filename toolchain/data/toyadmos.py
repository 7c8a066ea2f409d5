"""ToyADMOS ToyCar as DCASE 2020 task 2 ships it (the MLPerf Tiny AD data set), as log-mel vectors.

Layout: `train/normal_*.wav` (training, normal only), `test/normal_*.wav` and `test/anomaly_*.wav`
(DCASE names them `<kind>_id_<NN>_<index>.wav`). Every clip becomes its 5-frame log-mel vectors
(`logmel.py`: 128 mel bins, n_fft 1024, hop 512, power 2, dB) -> x float32 [N, 640] in dB (roughly
-100..+60, not normalised, as the MLPerf/DCASE baseline feeds its autoencoder).

y: 0 normal, 1 anomalous, one label per vector (the label of its clip). Validation = a seeded
`val_fraction` of the training clips (normal, y 0). The returned `AnomalyDataset` also has
`test_clip` (clip index of every test vector) and `test_clip_names`, so the MLPerf metric, AUC over
clips scored by their mean vector error, is `roc_auc(*ds.clip_scores(errors))`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from toolchain.data import logmel
from toolchain.data.common import Progress, dataset_source, missing_data_error, read_wav, split_indices
from toolchain.errors import ToolchainError

URL = "https://zenodo.org/record/3678171 (DCASE 2020 task 2 development data, dev_data_ToyCar.zip)"


def _find_root(root: Path | None) -> Path:
    expected = ["train/normal_*.wav (normal training clips)", "test/normal_*.wav", "test/anomaly_*.wav"]
    if root is None:
        raise missing_data_error("toyadmos", "(no root given)", expected, URL)
    for folder in (root, root / "ToyCar", root / "dev_data" / "ToyCar"):
        if all(any((folder / sub).glob(pattern)) for sub, pattern in
               (("train", "normal_*.wav"), ("test", "normal_*.wav"), ("test", "anomaly_*.wav"))):
            return folder
    raise missing_data_error("toyadmos", root, expected, URL)


def _wanted(path: Path, machine_ids: tuple[str, ...] | None) -> bool:
    return machine_ids is None or any(f"_{mid}_" in path.name for mid in machine_ids)


def _clip_vectors(paths: list[Path], progress: Progress) -> list[np.ndarray]:
    out, rate_seen = [], None
    for path in paths:
        rate, samples = read_wav(path)
        if rate_seen is not None and rate != rate_seen:
            raise ToolchainError(f"toyadmos: {path} is sampled at {rate} Hz, other clips at {rate_seen} Hz")
        rate_seen = rate
        out.append(logmel.vectors(samples, rate))
        progress.advance()
    return out


@dataset_source("toyadmos", kind="real", task="anomaly",
                description="ToyADMOS ToyCar (DCASE 2020), 640-dim 5-frame log-mel vectors (MLPerf Tiny AD)")
def load_toyadmos(root: Path | None, seed: int, *, machine_ids: tuple[str, ...] | list[str] | None = None,
                  max_train_clips: int | None = None, val_fraction: float = 0.1) -> logmel.AnomalyDataset:
    """`machine_ids` like ("id_01", "id_02") keeps those toy cars only; `max_train_clips` keeps a seeded
    subset of the training clips (the full ToyCar train set is ~3.2 GB of float32 vectors)."""
    root = _find_root(root)
    ids = tuple(machine_ids) if machine_ids is not None else None
    train_paths = [p for p in sorted((root / "train").glob("normal_*.wav")) if _wanted(p, ids)]
    test_paths = [p for p in sorted((root / "test").glob("*.wav"))
                  if p.name.startswith(("normal_", "anomaly_")) and _wanted(p, ids)]
    if not train_paths or not test_paths:
        raise ToolchainError(f"toyadmos: no clips for machine ids {ids} in {root}",
                             "machine ids look like id_01 (from file names such as normal_id_01_00000000.wav)")
    if max_train_clips is not None and len(train_paths) > max_train_clips:
        keep = np.random.default_rng([seed, 0]).choice(len(train_paths), max_train_clips, replace=False)
        train_paths = [train_paths[i] for i in sorted(keep)]
    train_idx, val_idx = split_indices(len(train_paths), (1 - val_fraction, val_fraction), seed)
    progress = Progress("toyadmos: log-mel features", len(train_paths) + len(test_paths))
    train_vectors = _clip_vectors(train_paths, progress)
    test_vectors = _clip_vectors(test_paths, progress)
    progress.close()
    return logmel.anomaly_dataset(
        "toyadmos",
        [train_vectors[i] for i in train_idx],
        [train_vectors[i] for i in val_idx],
        test_vectors,
        [int(p.name.startswith("anomaly_")) for p in test_paths],
        [p.name for p in test_paths],
    )
