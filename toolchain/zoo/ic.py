"""IC: ResNet-8 of MLPerf Tiny (mlcommons/tiny benchmark/training/image_classification).

32x32 RGB input (CIFAR-10), 10 classes; ~77.7 k parameters after BatchNorm folding, ~12.5 M MACs.
"""
from __future__ import annotations

from toolchain.tf import import_tf
from toolchain.zoo import same_conv, scaled, zoo_model

WEIGHT_DECAY = 1e-4
STACKS = ((16, 1), (32, 2), (64, 2))  # (filters, stride of the first conv)


@zoo_model(
    "ic",
    task="image classification",
    input_shape=(32, 32, 3),
    num_classes=10,
    description="ResNet-8: conv 3x3 + 3 residual stacks of 16/32/64 channels",
)
def build(input_shape, num_classes, width=1.0):
    _, keras = import_tf()
    layers = keras.layers
    conv = same_conv(keras, WEIGHT_DECAY)

    inputs = keras.Input(shape=input_shape, name="image")
    x = conv(scaled(16, width), 3, 1, "conv1")(inputs)
    x = layers.BatchNormalization(name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    for i, (filters, stride) in enumerate(STACKS, start=1):
        filters = scaled(filters, width)
        y = conv(filters, 3, stride, f"stack{i}_conv1")(x)
        y = layers.BatchNormalization(name=f"stack{i}_conv1_bn")(y)
        y = layers.Activation("relu", name=f"stack{i}_conv1_relu")(y)
        y = conv(filters, 3, 1, f"stack{i}_conv2")(y)
        y = layers.BatchNormalization(name=f"stack{i}_conv2_bn")(y)
        shortcut = x if stride == 1 else conv(filters, 1, stride, f"stack{i}_shortcut")(x)
        x = layers.Add(name=f"stack{i}_add")([shortcut, y])
        x = layers.Activation("relu", name=f"stack{i}_relu")(x)
    x = layers.AveragePooling2D(pool_size=int(min(x.shape[1:3])), name="avgpool")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(num_classes, activation="softmax", kernel_initializer="he_normal",
                           name="class_probs")(x)
    return keras.Model(inputs, outputs, name="ic_resnet8")
