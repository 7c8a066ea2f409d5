"""`tinyml export` of models as users have them: a Lambda layer (opt-in, it runs code) and custom classes."""
from __future__ import annotations

import numpy as np
import pytest

from toolchain.cli import main
from toolchain.compress.graph import save_keras

CUSTOM_LAYER_FILE = '''
import tf_keras as keras


class Halve(keras.layers.Layer):
    def call(self, x):
        return x * 0.5
'''


def _lambda_model(keras):
    inp = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.Lambda(lambda v: v * 0.5, name="halve")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inp, keras.layers.Dense(3)(x))


def _custom_layer_model(keras, tmp_path):
    import importlib.util

    (tmp_path / "layers.py").write_text(CUSTOM_LAYER_FILE)
    spec = importlib.util.spec_from_file_location("layers_for_saving", tmp_path / "layers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    inp = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = module.Halve(name="halve")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inp, keras.layers.Dense(3)(x))


def _export(tmp_path, *flags) -> int:
    return main(["export", str(tmp_path / "m.keras"), "-o", str(tmp_path / "m.tflite"), "--calibration",
                 str(tmp_path / "cal.npy"), *flags])


@pytest.fixture
def calibration(tmp_path):
    np.save(tmp_path / "cal.npy", np.random.default_rng(0).uniform(0, 1, (8, 8, 8, 1)).astype(np.float32))


def test_lambda_is_refused_without_the_opt_in_then_exported_with_it(tmp_path, keras, calibration, capsys):
    save_keras(_lambda_model(keras), tmp_path / "m.keras")
    assert _export(tmp_path) == 2
    err = capsys.readouterr().err
    assert "has a Lambda layer: loading it runs Python code" in err and "--allow-lambda" in err
    assert not (tmp_path / "m.tflite").exists()

    assert _export(tmp_path, "--allow-lambda") == 0
    assert "full-int8 TFLite" in capsys.readouterr().out
    assert (tmp_path / "m.tflite").read_bytes()[4:8] == b"TFL3"


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
def test_legacy_h5_is_refused_without_the_opt_in(tmp_path, keras, calibration, capsys):
    """Keras loads an H5 file's Lambda layers even in safe mode, and the file cannot be inspected first."""
    _lambda_model(keras).save(tmp_path / "m.h5")
    (tmp_path / "m.h5").rename(tmp_path / "m.keras")
    assert _export(tmp_path) == 2
    assert "not a .keras archive: legacy H5/SavedModel files load Lambda layers" in capsys.readouterr().err
    assert not (tmp_path / "m.tflite").exists()
    assert _export(tmp_path, "--allow-lambda") == 0


def test_custom_layer_needs_its_file(tmp_path, keras, calibration, capsys):
    save_keras(_custom_layer_model(keras, tmp_path), tmp_path / "m.keras")
    assert _export(tmp_path) == 2
    assert "--custom-objects" in capsys.readouterr().err
    assert not (tmp_path / "m.tflite").exists()

    assert _export(tmp_path, "--custom-objects", str(tmp_path / "layers.py")) == 0
    assert (tmp_path / "m.tflite").read_bytes()[4:8] == b"TFL3"


def test_custom_objects_dict_is_preferred_and_bad_files_are_refused(tmp_path, keras, calibration, capsys):
    save_keras(_custom_layer_model(keras, tmp_path), tmp_path / "m.keras")
    (tmp_path / "named.py").write_text(CUSTOM_LAYER_FILE + "\nCUSTOM_OBJECTS = {'Unrelated': Halve}\n")
    assert _export(tmp_path, "--custom-objects", str(tmp_path / "named.py")) == 2  # Halve is not in the dict
    assert "--custom-objects" in capsys.readouterr().err
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    assert _export(tmp_path, "--custom-objects", str(tmp_path / "broken.py")) == 2
    assert "failed to run: RuntimeError: boom" in capsys.readouterr().err
    assert _export(tmp_path, "--custom-objects", str(tmp_path / "m.keras")) == 2
    assert "not a Python file" in capsys.readouterr().err
    assert not (tmp_path / "m.tflite").exists()
