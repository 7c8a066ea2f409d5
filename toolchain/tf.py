"""Lazy TensorFlow import: the CLI starts without TF; stages that need it call `import_tf()`."""
from __future__ import annotations

import logging
import os
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Iterator


@dataclass
class CapturedStderr:
    text: str = ""


@contextmanager
def captured_stderr() -> Iterator[CapturedStderr]:
    """Redirect file descriptor 2 (where TF's C++ code logs) into a buffer for the block.

    TF 2.21's native libraries log through absl before it is initialised, which ignores
    TF_CPP_MIN_LOG_LEVEL; the only way to keep a run quiet is to catch fd 2. The caller decides
    whether the captured text matters (e.g. shows it when the block fails).
    """
    captured = CapturedStderr()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", errors="replace")


def import_tf() -> tuple[ModuleType, ModuleType]:
    """Return `(tensorflow, tf_keras)`, with Keras 2 selected and TF's start-up noise hidden.

    Keras 3 is never used: TFLite conversion, pruning and QAT in this stack all expect `tf_keras`.
    """
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" not in sys.modules or "tf_keras" not in sys.modules:
        with captured_stderr() as noise:
            try:
                import tensorflow
                import tf_keras  # noqa: F401

                # Device discovery logs too (a failed cuInit on machines without a GPU): do it now.
                tensorflow.config.list_physical_devices()
            except BaseException:
                sys.stderr.write(noise.text)
                raise
    import tensorflow as tf
    import tf_keras as keras

    tf.get_logger().setLevel(logging.ERROR)
    return tf, keras
