"""Custom Keras layers of the zoo's exit models. Importing this module imports TensorFlow.

Saved models name them `tinyml>ChannelSlice`; `CUSTOM_OBJECTS` (or importing this module, which
registers them) lets `keras.models.load_model` read them back.
"""
from __future__ import annotations

from toolchain.tf import import_tf

tf, keras = import_tf()


@keras.utils.register_keras_serializable(package="tinyml")
class ChannelSlice(keras.layers.Layer):
    """Channels [start, stop) of an NHWC feature map (T-RecX's KWS exit reads the first 32 of 64).

    A layer, not `x[..., :32]` (a TFOpLambda) or a `Lambda`: pruning and QAT refuse those
    (FACTS.md), while this one declares it has nothing to prune and serializes by config.
    In int8 TFLite it becomes one STRIDED_SLICE.
    """

    def __init__(self, start: int = 0, stop: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if stop is None or not 0 <= start < stop:
            raise ValueError(f"ChannelSlice needs 0 <= start < stop, got start={start}, stop={stop}")
        self.start, self.stop = int(start), int(stop)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is not None and self.stop > channels:
            raise ValueError(f"ChannelSlice [{self.start}, {self.stop}) of a {channels}-channel map")
        super().build(input_shape)

    def call(self, inputs):
        return inputs[..., self.start:self.stop]

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([*input_shape[:-1], self.stop - self.start])

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop}

    def get_prunable_weights(self):
        return []


CUSTOM_OBJECTS = {"ChannelSlice": ChannelSlice, "tinyml>ChannelSlice": ChannelSlice}
