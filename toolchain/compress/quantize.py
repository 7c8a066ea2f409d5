"""Quantization: post-training full-int8 and quantization-aware training (tfmot), multi-exit models included.

PTQ is `toolchain.export.tflite.convert_int8` (per-channel weights, int8 I/O, a representative set
from the training data). QAT clones the model with every layer annotated: tf_keras layers get tfmot's
default 8-bit config; layers tfmot does not know (the zoo's ChannelSlice, which only selects channels
and so needs no quantizer of its own) get `NoOpQuantizeConfig`, inside a `quantize_scope` that names
them. `quantize_model(whole_model)` would refuse such a layer (FACTS.md). Annotating a BatchNormalization
with a config of its own would stop tfmot folding it into the conv before it (the int8 model then keeps
a float-style MUL + broadcast ADD), so the no-op config goes only to non-Keras layers and to the
SCALE_PRESERVING ones: TFLite's int8 AVERAGE_POOL_2D / MAX_POOL_2D / RESHAPE keep their input's scale,
and a fake-quantizer of their own (tfmot's default for pooling) only makes the converter add a
requantizing QUANTIZE op after each (measured on KWS with T-RecX + EV-assist: 5 QUANTIZE ops -> 2,
-0.9 kB, same accuracy). Layer names are kept (no `quant_` prefix): outputs stay `exit_1` / `final`
in the int8 model's signature.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from toolchain.compress.graph import is_builtin
from toolchain.compress.training import fit
from toolchain.tf import import_tf

tf, keras = import_tf()
import tensorflow_model_optimization as tfmot  # noqa: E402  (after import_tf: tfmot must see tf_keras)

quantization = tfmot.quantization.keras
SCALE_PRESERVING = frozenset({"AveragePooling2D", "MaxPooling2D", "Flatten", "Reshape"})


class NoOpQuantizeConfig(quantization.QuantizeConfig):
    """Quantize nothing in the layer: for layers that only move or average values (slices, pooling)."""

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}


def quantize_scope():
    """The scope that deserializes our QAT models (custom layers and the no-op config)."""
    from toolchain.zoo.layers import CUSTOM_OBJECTS

    return quantization.quantize_scope({**CUSTOM_OBJECTS, "NoOpQuantizeConfig": NoOpQuantizeConfig})


def qat_model(model):
    """`model` with fake-quantization (weights and activations) inserted, ready for fine-tuning."""

    def annotate(layer):
        own = is_builtin(layer) and type(layer).__name__ not in SCALE_PRESERVING
        config = None if own else NoOpQuantizeConfig()
        return quantization.quantize_annotate_layer(layer, config)

    from toolchain.compress.graph import copy_model

    base = copy_model(model)
    with quantize_scope():
        annotated = keras.models.clone_model(base, clone_function=annotate)
        return quantization.quantize_apply(annotated, quantized_layer_name_prefix="")


def quantization_aware_training(model, dataset, *, epochs: int = 2, batch_size: int = 100, lr: float = 1e-4,
                                seed: int = 0, **fit_options):
    """The QAT model of `model`, fine-tuned on the training split (`fit_options`: see training.fit)."""
    qat = qat_model(model)
    with quantize_scope():
        fit(qat, dataset, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, **fit_options)
    return qat


def to_int8(model, calibration: np.ndarray, path: Path | str | None = None) -> bytes:
    """Full-int8 .tflite of a float or QAT model (`convert_int8`; the representative set calibrates
    what QAT did not already fix)."""
    from toolchain.export.tflite import convert_int8

    return convert_int8(model, calibration, path)
