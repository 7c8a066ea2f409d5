"""VWW: MobileNetV1, width 0.25, of MLPerf Tiny (mlcommons/tiny benchmark/training/visual_wake_words).

96x96 RGB input, person / no person; ~211 k parameters after BatchNorm folding, ~7.49 M MACs.
"""
from __future__ import annotations

from toolchain.tf import import_tf
from toolchain.zoo import same_conv, scaled, zoo_model

STEM_FILTERS = 8
WEIGHT_DECAY = 1e-4
# (pointwise filters, depthwise stride) of the 13 depthwise-separable blocks.
BLOCKS = (
    (16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2),
    (128, 1), (128, 1), (128, 1), (128, 1), (128, 1), (256, 2), (256, 1),
)


@zoo_model(
    "vww",
    task="visual wake words",
    input_shape=(96, 96, 3),
    num_classes=2,
    description="MobileNetV1 alpha 0.25: conv 3x3/2 + 13 depthwise-separable blocks",
)
def build(input_shape, num_classes, width=1.0):
    _, keras = import_tf()
    layers = keras.layers
    conv = same_conv(keras, WEIGHT_DECAY)

    def bn_relu(x, name):
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.Activation("relu", name=f"{name}_relu")(x)

    inputs = keras.Input(shape=input_shape, name="image")
    x = bn_relu(conv(scaled(STEM_FILTERS, width), 3, 2, "conv1")(inputs), "conv1")
    for i, (filters, stride) in enumerate(BLOCKS, start=1):
        # The reference passes kernel_initializer/kernel_regularizer to DepthwiseConv2D, which
        # ignores both (they are depthwise_*): depthwise kernels keep Keras' defaults.
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", name=f"block{i}_dw")(x)
        x = bn_relu(x, f"block{i}_dw")
        x = bn_relu(conv(scaled(filters, width), 1, 1, f"block{i}_pw")(x), f"block{i}_pw")
    x = layers.AveragePooling2D(pool_size=tuple(x.shape[1:3]), name="avgpool")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="person_probs")(x)
    return keras.Model(inputs, outputs, name="vww_mobilenet_v1_025")
