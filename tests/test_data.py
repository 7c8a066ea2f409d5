"""toolchain.data: real loaders on tiny fixtures in the real formats, the front ends, and the generators."""
from __future__ import annotations

import math
import shutil
import time

import numpy as np
import pytest

from fixtures_data import (
    SC_KEYWORDS,
    make_cifar,
    make_speech_commands,
    make_speech_commands_test_set,
    make_toyadmos,
    make_vww,
)
from toolchain import data
from toolchain.data import logmel, mfcc
from toolchain.errors import ToolchainError

ALL_SOURCES = {"cifar10": "real", "speech_commands": "real", "vww96": "real", "toyadmos": "real",
               "keywords": "generated", "digits": "generated", "synthetic_vww": "generated",
               "synthetic_machine": "generated"}
SC_CLASSES = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "_silence_", "_unknown_")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def assert_splits(ds: data.Dataset, input_shape: tuple[int, ...]) -> None:
    assert ds.input_shape == input_shape
    for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape == (len(y), *input_shape)
        assert np.isfinite(x).all()
        if len(y):
            assert 0 <= y.min() and y.max() < ds.num_classes


# ---- registry ---------------------------------------------------------------------------------------

def test_every_source_is_registered():
    assert {name: data.DATASETS.get(name).kind for name in data.DATASETS} == ALL_SOURCES


def test_unknown_dataset_and_unknown_option_are_user_errors():
    with pytest.raises(ToolchainError, match="unknown dataset 'mnist'"):
        data.load("mnist")
    with pytest.raises(ToolchainError, match=r"no option\(s\) colour(.|\n)*options: augment, max_shift"):
        data.load("digits", colour=True)


# ---- CIFAR-10 ---------------------------------------------------------------------------------------

def test_cifar10_reads_pickle_batches_as_raw_pixels(tmp_path):
    ref = make_cifar(tmp_path, per_batch=6)
    ds = data.load("cifar10", root=tmp_path, val_size=10)
    assert_splits(ds, (32, 32, 3))
    assert ds.classes[:3] == ("airplane", "automobile", "bird") and ds.num_classes == 10
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (20, 10, 6)
    np.testing.assert_array_equal(ds.x_train, ref["x_train"][:20].astype(np.float32))
    np.testing.assert_array_equal(ds.x_val, ref["x_train"][20:].astype(np.float32))  # last val_size
    np.testing.assert_array_equal(ds.y_val, ref["y_train"][20:])
    np.testing.assert_array_equal(ds.x_test, ref["x_test"].astype(np.float32))
    assert ds.x_train.max() > 1.0  # raw 0..255, not rescaled


def test_cifar10_shuffle_is_seeded_and_root_may_be_the_batches_folder(tmp_path):
    make_cifar(tmp_path)
    a = data.load("cifar10", root=tmp_path / "cifar-10-batches-py", val_size=10, shuffle=True, seed=3)
    b = data.load("cifar10", root=tmp_path, val_size=10, shuffle=True, seed=3)
    np.testing.assert_array_equal(a.x_val, b.x_val)
    c = data.load("cifar10", root=tmp_path, val_size=10, shuffle=True, seed=4)
    assert not np.array_equal(a.y_train, c.y_train) or not np.array_equal(a.x_val, c.x_val)


def test_cifar10_default_root_is_the_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    make_cifar(tmp_path / ".keras" / "datasets")
    assert len(data.load("cifar10", val_size=5).y_val) == 5


def test_cifar10_missing_and_malformed_files_say_what_is_expected(tmp_path, monkeypatch):
    with pytest.raises(ToolchainError) as err:
        data.load("cifar10", root=tmp_path)
    text = str(err.value)
    assert "cifar-10-batches-py/data_batch_1" in text and "test_batch" in text and "cifar-10-python.tar.gz" in text
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ToolchainError, match=r"\.keras"):
        data.load("cifar10")
    make_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(ToolchainError, match="data_batch_3 is not a CIFAR-10 python batch"):
        data.load("cifar10", root=tmp_path, val_size=5)


# ---- MFCC front end ---------------------------------------------------------------------------------

def test_mfcc_shape_determinism_and_tone_vs_noise():
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)
    noise = rng.uniform(-0.5, 0.5, 16000)
    f_tone, f_noise = mfcc.mfcc(tone), mfcc.mfcc(noise)
    assert f_tone.shape == (49, 10, 1) == mfcc.FEATURE_SHAPE and f_tone.dtype == np.float32
    np.testing.assert_array_equal(f_tone, mfcc.mfcc(tone))
    np.testing.assert_array_equal(mfcc.mfcc(np.stack([tone, noise])), np.stack([f_tone, f_noise]))
    assert np.abs(f_tone - f_noise).mean() > 1.0
    # a pure tone is stationary: every frame has the same coefficients; noise frames vary
    assert f_tone.std(axis=0).max() < 1e-3 < f_noise.std(axis=0).mean()
    # silence is log(1e-6) in every mel bin: only coefficient 0 is non-zero
    f_zero = mfcc.mfcc(np.zeros(16000))[..., 0]
    np.testing.assert_allclose(f_zero[:, 0], np.log(1e-6) * 2 * 40 / np.sqrt(2 * 40), rtol=1e-6)
    np.testing.assert_allclose(f_zero[:, 1:], 0, atol=1e-4)


def test_mfcc_matches_tensorflow_signal_recipe():
    from toolchain.tf import import_tf

    tf, _ = import_tf()
    rng = np.random.default_rng(1)
    clips = rng.uniform(-1, 1, (3, 16000)).astype(np.float32)
    # float32 FFT leakage makes TF's log of near-empty mel bins noisy: keep some noise under the tone
    clips[1] = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000) + 0.01 * clips[2]
    stfts = tf.signal.stft(clips, 480, 320, fft_length=None, window_fn=tf.signal.hann_window)
    weights = tf.signal.linear_to_mel_weight_matrix(40, stfts.shape[-1], 16000, 20.0, 4000.0)
    mel = tf.tensordot(tf.abs(stfts), weights, 1)
    ref = tf.signal.mfccs_from_log_mel_spectrograms(tf.math.log(mel + 1e-6))[..., :10].numpy()
    np.testing.assert_allclose(mfcc.mfcc(clips)[..., 0], ref, rtol=1e-4, atol=5e-3)


# ---- Speech Commands --------------------------------------------------------------------------------

def test_speech_commands_splits_follow_the_list_files(tmp_path):
    splits = make_speech_commands(tmp_path)
    ds = data.load("speech_commands", root=tmp_path)
    assert_splits(ds, (49, 10, 1))
    assert ds.classes == SC_CLASSES
    for y, split in ((ds.y_train, "train"), (ds.y_val, "val"), (ds.y_test, "test")):
        keywords = sum(1 for rel in splits[split] if rel.split("/")[0] in SC_KEYWORDS)
        extra = math.ceil(keywords * 0.1)
        assert np.bincount(y, minlength=12)[:10].tolist() == [keywords // 10] * 10
        assert (y == 10).sum() == extra  # _silence_
        assert (y == 11).sum() == min(extra, sum(1 for r in splits[split] if r.split("/")[0] not in SC_KEYWORDS))

    from toolchain.data.speech_commands import _split_items

    items = _split_items(tmp_path, 0, 10.0, 10.0, None)
    for split in ("train", "val", "test"):
        listed = {p.relative_to(tmp_path).as_posix() for p, _ in items[split] if p is not None}
        assert listed <= splits[split]
        assert {r for r in splits[split] if r.split("/")[0] in SC_KEYWORDS} <= listed


def test_speech_commands_features_are_the_front_end_of_the_wav(tmp_path):
    make_speech_commands(tmp_path)
    ds = data.load("speech_commands", root=tmp_path, background_noise=False)
    from toolchain.data.common import read_wav

    _, samples = read_wav(tmp_path / "down" / "00000000_nohash_0.wav")  # first validation clip
    expected = mfcc.mfcc(mfcc.fit_length(mfcc.peak_normalize(samples)))
    np.testing.assert_allclose(ds.x_val[0], expected, atol=1e-5)
    noisy = data.load("speech_commands", root=tmp_path, background_noise=True, background_frequency=1.0)
    np.testing.assert_array_equal(noisy.x_val, ds.x_val)  # noise only ever on the training split
    keyword = noisy.y_train < 10
    assert not np.allclose(noisy.x_train[keyword], ds.x_train[keyword])
    again = data.load("speech_commands", root=tmp_path, background_noise=True, background_frequency=1.0)
    np.testing.assert_array_equal(again.x_train, noisy.x_train)  # seeded


def test_speech_commands_official_test_dir(tmp_path):
    make_speech_commands(tmp_path / "sc")
    make_speech_commands_test_set(tmp_path / "test_set", per_class=2)
    ds = data.load("speech_commands", root=tmp_path / "sc", test_dir=tmp_path / "test_set")
    assert np.bincount(ds.y_test).tolist() == [2] * 12


def test_speech_commands_missing_data_message(tmp_path):
    with pytest.raises(ToolchainError) as err:
        data.load("speech_commands", root=tmp_path)
    text = str(err.value)
    for needed in ("validation_list.txt", "testing_list.txt", "_background_noise_", "yes/*.wav",
                   "speech_commands_v0.02.tar.gz"):
        assert needed in text
    with pytest.raises(ToolchainError, match="no root given"):
        data.load("speech_commands")


# ---- VWW ----------------------------------------------------------------------------------------------

def test_vww_reads_person_and_non_person_folders(tmp_path):
    make_vww(tmp_path, per_class=10)
    ds = data.load("vww96", root=tmp_path)
    assert_splits(ds, (96, 96, 3))
    assert ds.classes == ("non_person", "person")
    assert [len(ds.y_train), len(ds.y_val), len(ds.y_test)] == [16, 2, 2]
    for y in (ds.y_train, ds.y_val, ds.y_test):
        assert np.bincount(y, minlength=2)[0] == np.bincount(y, minlength=2)[1]
    x = np.concatenate([ds.x_train, ds.x_val, ds.x_test])
    assert 0.0 <= x.min() and x.max() <= 1.0
    flat = x[np.ptp(x, axis=(1, 2, 3)) == 0]  # the plain 96x96 fixtures: value (40 + 150 c + n) / 255
    assert len(flat) == 16 and np.isin(np.round(flat[:, 0, 0, 0] * 255), np.arange(40, 200)).all()
    small = data.load("vww96", root=tmp_path, max_per_class=3, seed=1)
    assert len(small.y_train) + len(small.y_val) + len(small.y_test) == 6


def test_vww_missing_data_message(tmp_path):
    (tmp_path / "person").mkdir()
    with pytest.raises(ToolchainError, match=r"non_person/\*\.jpg.*\n.*person/\*\.jpg(.|\n)*vw_coco2014_96"):
        data.load("vww96", root=tmp_path)


# ---- ToyADMOS and the log-mel front end --------------------------------------------------------------

def test_toyadmos_vectors_labels_and_clips(tmp_path):
    counts = make_toyadmos(tmp_path / "ToyCar", seconds=2.0)
    ds = data.load("toyadmos", root=tmp_path)  # finds ToyCar/ below root
    assert isinstance(ds, logmel.AnomalyDataset) and ds.task == "anomaly"
    assert_splits(ds, (640,))
    per_clip = 1 + 32000 // 512 - 4  # 59 vectors in a 2 s clip
    assert len(ds.x_train) + len(ds.x_val) == counts["train"] * per_clip
    assert len(ds.x_val) == 1 * per_clip and not ds.y_train.any() and not ds.y_val.any()
    n_test = counts["test_normal"] + counts["test_anomaly"]
    assert len(ds.test_clip_names) == n_test and len(ds.x_test) == n_test * per_clip
    scores, labels = ds.clip_scores(np.arange(len(ds.x_test), dtype=float))
    assert labels.tolist() == [int(n.startswith("anomaly")) for n in ds.test_clip_names]
    assert np.bincount(ds.test_clip).tolist() == [per_clip] * n_test
    one = data.load("toyadmos", root=tmp_path / "ToyCar", machine_ids=["id_02"], val_fraction=0.0)
    assert len(one.x_val) == 0 and all("_id_02_" in n for n in one.test_clip_names)


def test_toyadmos_missing_data_message(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(ToolchainError) as err:
        data.load("toyadmos", root=tmp_path)
    assert "train/normal_*.wav" in str(err.value) and "test/anomaly_*.wav" in str(err.value)
    assert "zenodo" in str(err.value)


def test_log_mel_vectors_stack_five_frames_and_find_a_tone():
    rate = 16000
    tone = np.sin(2 * np.pi * 1000 * np.arange(rate) / rate)
    spec = logmel.log_mel(tone, rate)
    assert spec.shape == (1 + rate // 512, 128)
    peak_hz = logmel._mel_to_hz_slaney(np.linspace(0, logmel._hz_to_mel_slaney(8000), 130))[1:-1]
    assert abs(peak_hz[spec.mean(axis=0).argmax()] - 1000) < 60
    v = logmel.vectors(tone, rate)
    assert v.shape == (len(spec) - 4, 640) and v.dtype == np.float32
    np.testing.assert_allclose(v[3, 128:256], spec[4], rtol=1e-6)
    np.testing.assert_allclose(v[3, 512:], v[4, 384:512])


def test_roc_auc_matches_scikit_learn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.normal(labels * 0.7, 1.0), 1)  # with ties
    assert logmel.roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))
    assert logmel.roc_auc([0, 1], [0, 1]) == 1.0 and logmel.roc_auc([1, 0], [0, 1]) == 0.0


# ---- generators -------------------------------------------------------------------------------------

def test_digits_are_cifar_shaped_real_digits():
    ds = data.load("digits", augment=1)
    assert_splits(ds, (32, 32, 3))
    assert ds.classes == tuple("0123456789")
    n_train = len(ds.y_train) // 2
    assert n_train + len(ds.y_val) + len(ds.y_test) == 1797
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() == 255.0
    np.testing.assert_array_equal(ds.x_train[..., 0], ds.x_train[..., 2])
    np.testing.assert_array_equal(ds.y_train[:n_train], ds.y_train[n_train:])
    assert not np.array_equal(ds.x_train[:n_train], ds.x_train[n_train:])  # shifted copies
    plain = data.load("digits", augment=0)
    np.testing.assert_array_equal(plain.x_train, ds.x_train[:n_train])
    np.testing.assert_array_equal(plain.x_test, data.load("digits", augment=0).x_test)


@needs_espeak
def test_keywords_small_generation_is_cached(tmp_path, monkeypatch):
    ds = data.load("keywords", samples_per_class=3, cache_dir=tmp_path)
    assert_splits(ds, (49, 10, 1))
    assert ds.classes == SC_CLASSES
    for y in (ds.y_train, ds.y_val, ds.y_test):
        assert np.bincount(y, minlength=12).tolist() == [1] * 12
    assert len(list(tmp_path.glob("keywords-seed0-*.npz"))) == 1

    from toolchain.data import keywords

    def no_espeak(*args, **kwargs):
        raise AssertionError("the second load must come from the cache")

    monkeypatch.setattr(keywords, "_speak", no_espeak)
    again = data.load("keywords", samples_per_class=3, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.x_train, ds.x_train)
    np.testing.assert_array_equal(again.y_test, ds.y_test)


@needs_espeak
def test_keywords_are_deterministic_per_seed(tmp_path):
    a = data.load("keywords", samples_per_class=2, cache_dir=tmp_path / "a", seed=5)
    b = data.load("keywords", samples_per_class=2, cache_dir=tmp_path / "b", seed=5)
    np.testing.assert_array_equal(a.x_train, b.x_train)


def test_keywords_without_espeak_says_how_to_install(tmp_path, monkeypatch):
    from toolchain.data import keywords

    monkeypatch.setattr(keywords.shutil, "which", lambda name: None)
    with pytest.raises(ToolchainError, match="apt-get install espeak-ng"):
        data.load("keywords", samples_per_class=2, cache_dir=tmp_path)


def test_synthetic_vww_small(tmp_path):
    ds = data.load("synthetic_vww", samples_per_class=10, cache_dir=tmp_path)
    assert_splits(ds, (96, 96, 3))
    assert ds.classes == ("non_person", "person")
    assert [len(ds.y_train), len(ds.y_val), len(ds.y_test)] == [16, 2, 2]
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0 and ds.x_train.std() > 0.05
    again = data.load("synthetic_vww", samples_per_class=10, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.x_test, ds.x_test)
    other = data.load("synthetic_vww", samples_per_class=10, cache_dir=tmp_path, seed=1)
    assert not np.array_equal(other.x_test, ds.x_test)
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_synthetic_machine_small(tmp_path):
    ds = data.load("synthetic_machine", train_clips=5, test_clips=2, clip_seconds=1.0, cache_dir=tmp_path)
    assert isinstance(ds, logmel.AnomalyDataset)
    assert_splits(ds, (640,))
    per_clip = 1 + 16000 // 512 - 4
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (4 * per_clip, per_clip, 4 * per_clip)
    scores, labels = ds.clip_scores(np.zeros(len(ds.x_test)))
    assert labels.tolist() == [0, 0, 1, 1] and ds.test_clip_names[0].startswith("normal")
    again = data.load("synthetic_machine", train_clips=5, test_clips=2, clip_seconds=1.0, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.x_test, ds.x_test)
    assert again.test_clip_names == ds.test_clip_names


# ---- learnability (slow) ----------------------------------------------------------------------------

def _pca_auc(ds: logmel.AnomalyDataset, components: int = 16) -> float:
    mean, std = ds.x_train.mean(0), ds.x_train.std(0) + 1e-6
    _, _, vt = np.linalg.svd((ds.x_train[::4] - mean) / std, full_matrices=False)
    z = (ds.x_test - mean) / std
    errors = ((z - z @ vt[:components].T @ vt[:components]) ** 2).mean(axis=1)
    return logmel.roc_auc(*ds.clip_scores(errors))


@pytest.mark.slow
def test_synthetic_machine_anomalies_are_detectable_but_not_trivial(tmp_path):
    # a PCA reconstruction baseline scores ~0.8-0.9 per clip (MLPerf's AD target on ToyCar is 0.85)
    auc = _pca_auc(data.load("synthetic_machine", train_clips=40, test_clips=30, cache_dir=tmp_path))
    assert 0.7 < auc < 0.98


@pytest.mark.slow
@needs_espeak
def test_keywords_are_learnable_by_a_small_cnn(tmp_path, keras):
    start = time.monotonic()
    ds = data.load("keywords", cache_dir=tmp_path)
    generation_s = time.monotonic() - start
    assert generation_s < 120
    keras.utils.set_random_seed(0)
    layers = keras.layers
    model = keras.Sequential([
        layers.Input(ds.input_shape),
        layers.Conv2D(32, (10, 4), strides=(2, 2), padding="same"), layers.BatchNormalization(), layers.ReLU(),
        layers.DepthwiseConv2D(3, padding="same"), layers.BatchNormalization(), layers.ReLU(),
        layers.Conv2D(32, 1), layers.BatchNormalization(), layers.ReLU(),
        layers.GlobalAveragePooling2D(), layers.Dense(ds.num_classes, activation="softmax"),
    ])
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(ds.x_train, ds.y_train, epochs=30, batch_size=32, verbose=0)
    _, val_accuracy = model.evaluate(ds.x_val, ds.y_val, verbose=0)
    assert val_accuracy > 2 / ds.num_classes, f"val accuracy {val_accuracy:.3f}"
