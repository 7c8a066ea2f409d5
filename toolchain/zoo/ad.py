"""AD: the fully connected autoencoder of MLPerf Tiny (mlcommons/tiny benchmark/training/anomaly_detection).

640 inputs (5 frames x 128 log-mel bins), reconstructs them; ~266 k parameters, ~264 k MACs.
The anomaly score is the reconstruction error.
"""
from __future__ import annotations

from toolchain.tf import import_tf
from toolchain.zoo import scaled, zoo_model

HIDDEN = 128
BOTTLENECK = 8
DEPTH = 4  # hidden layers on each side of the bottleneck


@zoo_model(
    "ad",
    task="anomaly detection",
    input_shape=(640,),
    num_classes=None,
    description="FC autoencoder 640-128x4-8-128x4-640 with BatchNorm",
)
def build(input_shape, num_classes, width=1.0):
    """`num_classes` is ignored: the output always has the input's size."""
    _, keras = import_tf()
    layers = keras.layers

    def dense_bn_relu(x, units, name):
        # No weight decay here: the reference autoencoder trains without it.
        x = layers.Dense(units, name=name)(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.Activation("relu", name=f"{name}_relu")(x)

    inputs = keras.Input(shape=input_shape, name="features")
    x = inputs
    for i in range(1, DEPTH + 1):
        x = dense_bn_relu(x, scaled(HIDDEN, width), f"encoder{i}")
    x = dense_bn_relu(x, scaled(BOTTLENECK, width), "bottleneck")
    for i in range(1, DEPTH + 1):
        x = dense_bn_relu(x, scaled(HIDDEN, width), f"decoder{i}")
    outputs = layers.Dense(input_shape[-1], name="reconstruction")(x)
    return keras.Model(inputs, outputs, name="ad_autoencoder")
