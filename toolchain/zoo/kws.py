"""KWS: DS-CNN of MLPerf Tiny (mlcommons/tiny benchmark/training/keyword_spotting).

49x10 MFCC input, 12 keywords; 22,604 parameters after BatchNorm folding, ~2.66 M MACs.
"""
from __future__ import annotations

from toolchain.tf import import_tf
from toolchain.zoo import scaled, zoo_model

FILTERS = 64
WEIGHT_DECAY = 1e-4
BLOCKS = 4


@zoo_model(
    "kws",
    task="keyword spotting",
    input_shape=(49, 10, 1),
    num_classes=12,
    description="DS-CNN: conv 10x4/2 + 4 depthwise-separable blocks, 64 channels",
)
def build(input_shape, num_classes, width=1.0):
    _, keras = import_tf()
    layers = keras.layers
    l2 = keras.regularizers.l2(WEIGHT_DECAY)
    filters = scaled(FILTERS, width)

    inputs = keras.Input(shape=input_shape, name="mfcc")
    x = layers.Conv2D(filters, (10, 4), strides=2, padding="same", kernel_regularizer=l2,
                      name="conv1")(inputs)
    x = layers.BatchNormalization(name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.Dropout(0.2, name="conv1_dropout")(x)
    for i in range(1, BLOCKS + 1):
        # The reference passes kernel_regularizer to DepthwiseConv2D, which ignores it (the
        # depthwise kernel takes depthwise_regularizer): depthwise kernels are not regularised.
        x = layers.DepthwiseConv2D((3, 3), padding="same", name=f"block{i}_dw")(x)
        x = layers.BatchNormalization(name=f"block{i}_dw_bn")(x)
        x = layers.Activation("relu", name=f"block{i}_dw_relu")(x)
        x = layers.Conv2D(filters, (1, 1), padding="same", kernel_regularizer=l2,
                          name=f"block{i}_pw")(x)
        x = layers.BatchNormalization(name=f"block{i}_pw_bn")(x)
        x = layers.Activation("relu", name=f"block{i}_pw_relu")(x)
    x = layers.Dropout(0.4, name="dropout")(x)
    # As in the reference: half the input size, i.e. (24, 5) on the 25x5 map -> 1x1.
    x = layers.AveragePooling2D(pool_size=(input_shape[0] // 2, input_shape[1] // 2),
                                name="avgpool")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="keyword_probs")(x)
    return keras.Model(inputs, outputs, name="kws_dscnn")
