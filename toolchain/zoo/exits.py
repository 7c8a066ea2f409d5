"""Early exits for the zoo's classifiers: T-RecX (with early-view assistance), SDN and BranchyNet heads.

An exit model has two softmax outputs, `exit_1` (the early exit) and `final`, in that order. Inference
runs the backbone to the exit's feature map, evaluates the exit head, and leaves when the head's
max softmax >= threshold; otherwise it finishes the backbone and answers with `final`.

Where the exit sits (T-RecX, arXiv 2207.06613, and its public code), by the backbone layer whose
output it reads:
  - KWS DS-CNN: after the 2nd depthwise-separable block (`block2_pw_relu`, 25x5x64).
  - IC ResNet-8: after residual stack 1 (`stack1_relu`, 32x32x16).
  - VWW MobileNetV1-0.25: after the 2nd depthwise-separable block (`block2_pw_relu`, 24x24x32).
The AD autoencoder has no classes to exit with: it takes style "none" only.

Styles (all three put their single exit at the same place, so they differ only in head and loss):
  - "trecx": T-RecX's small head. KWS: the first 32 channels (a `ChannelSlice`), 3x3/s2 depthwise
    + ReLU, 2x2 average pool, FC. IC: 1x1 conv -> 32, 2x2/s2 depthwise + ReLU, 4x4 average pool, FC.
    VWW: 1x1 conv -> 64, 2x2/s2 depthwise + ReLU, 4x4 average pool, FC. Joint loss: final 1.0, exit
    0.5 (IC) / 0.3 (KWS) / 0.4 (VWW). With `ev_assist`, early-view assistance: a depthwise conv with
    the exit depthwise's shape reads the first channels of the final feature map; during the first
    ~80% of the epochs its weights are copied from the exit's depthwise conv before every batch
    (`toolchain.train.callbacks.EarlyViewAssist`), after that it trains on its own. Its output,
    average-pooled over the whole map, is concatenated with the pooled final features before the
    final FC. (The public code pools a 13x3 corner of KWS's 25x5 map and flattens IC's and VWW's
    maps unpooled; we pool the whole map, as the paper's text describes.)
  - "sdn": a Shallow-Deep-Networks internal classifier (Kaya et al., ICML 2019): feature reduction
    by pooling to about a quarter of the map in each direction, then one FC. SDN mixes max and
    average pooling with a learned weight; we keep the average half (the T-RecX authors' SDN
    baseline does the same, and it keeps to the ops of the reference models). The exit's loss
    weight grows linearly during training from 0.01 to tau, by default the exit's relative cost
    (MACs up to the exit / MACs of the backbone), as SDN's IC-weighting schedule prescribes.
  - "branchy": a BranchyNet-style branch (Teerapittayanon et al., ICPR 2016): a full 3x3
    convolution (half the feature map's channels) + ReLU, 4x4 average pool, FC; the joint loss
    weights the branch 1.0, like the main exit (the T-RecX authors' BranchyNet baseline).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from toolchain import zoo
from toolchain.errors import ToolchainError
from toolchain.registry import Registry
from toolchain.tf import import_tf

EXIT_OUTPUT = "exit_1"
FINAL_OUTPUT = "final"
EXIT_DEPTHWISE = "exit_1_dw"  # T-RecX: the exit's depthwise conv, source of the EV-assist copy
EV_DEPTHWISE = "ev_dw"  # T-RecX: the early-view depthwise conv on the final feature map
WEIGHT_DECAY = 1e-4
SDN_START_WEIGHT = 0.01


@dataclass(frozen=True)
class ExitPoint:
    """Where a zoo model's exit reads, and T-RecX's head for it."""

    feature_layer: str  # backbone layer whose output the exit reads
    feature_shape: tuple[int, int, int]  # that output at the zoo's default input
    trecx_loss_weight: float
    slice_channels: int | None  # T-RecX head reads the first N channels (KWS)
    pointwise_filters: int | None  # T-RecX head's 1x1 conv before the depthwise (IC, VWW)
    depthwise_kernel: int
    pool: int  # T-RecX head's average pool after the depthwise
    ev_stride: int  # stride of the EV-assist depthwise on the final feature map (as the public code)

    def scaled(self, width: float) -> ExitPoint:
        """The exit point of the backbone `width` times as wide: its channel counts scale with the backbone's."""
        if width == 1.0:
            return self
        return dataclasses.replace(
            self, feature_shape=(*self.feature_shape[:2], zoo.scaled(self.feature_shape[2], width)),
            slice_channels=self.slice_channels and zoo.scaled(self.slice_channels, width),
            pointwise_filters=self.pointwise_filters and zoo.scaled(self.pointwise_filters, width))

    @property
    def depthwise_channels(self) -> int:
        return self.pointwise_filters or self.slice_channels or self.feature_shape[-1]


EXIT_POINTS: dict[str, ExitPoint] = {
    "kws": ExitPoint("block2_pw_relu", (25, 5, 64), 0.3, slice_channels=32, pointwise_filters=None,
                     depthwise_kernel=3, pool=2, ev_stride=1),
    "ic": ExitPoint("stack1_relu", (32, 32, 16), 0.5, slice_channels=None, pointwise_filters=32,
                    depthwise_kernel=2, pool=4, ev_stride=2),
    "vww": ExitPoint("block2_pw_relu", (24, 24, 32), 0.4, slice_channels=None, pointwise_filters=64,
                     depthwise_kernel=2, pool=4, ev_stride=1),
}


@dataclass(frozen=True)
class ExitStyle:
    name: str
    head: Callable  # head(feature_tensor, point, num_classes) -> softmax tensor named EXIT_OUTPUT
    description: str


EXIT_STYLES: Registry[ExitStyle] = Registry("exit style")


def exit_style(name: str, description: str):
    def decorator(head: Callable) -> Callable:
        EXIT_STYLES.register(name)(ExitStyle(name, head, description))
        return head

    return decorator


def _pool_size(shape, pool: int) -> tuple[int, int]:
    return min(pool, int(shape[1])), min(pool, int(shape[2]))


def _classifier(x, num_classes: int, name: str):
    _, keras = import_tf()
    x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    return keras.layers.Dense(num_classes, activation="softmax", name=name)(x)


@exit_style("trecx", "T-RecX: slice or 1x1 conv, strided depthwise + ReLU, average pool, FC")
def trecx_head(x, point: ExitPoint, num_classes: int):
    _, keras = import_tf()
    from toolchain.zoo.layers import ChannelSlice

    l2 = keras.regularizers.l2(WEIGHT_DECAY)
    if point.slice_channels:
        x = ChannelSlice(0, point.slice_channels, name=f"{EXIT_OUTPUT}_slice")(x)
    if point.pointwise_filters:
        x = keras.layers.Conv2D(point.pointwise_filters, 1, kernel_initializer="he_normal", kernel_regularizer=l2,
                                name=f"{EXIT_OUTPUT}_pw")(x)
    x = keras.layers.DepthwiseConv2D(point.depthwise_kernel, strides=2, padding="same", activation="relu",
                                     depthwise_initializer="he_normal", depthwise_regularizer=l2,
                                     name=EXIT_DEPTHWISE)(x)
    x = keras.layers.AveragePooling2D(_pool_size(x.shape, point.pool), name=f"{EXIT_OUTPUT}_pool")(x)
    return _classifier(x, num_classes, EXIT_OUTPUT)


@exit_style("sdn", "SDN: average-pool feature reduction (to ~1/4 per side), FC; loss weight ramps up")
def sdn_head(x, point: ExitPoint, num_classes: int):
    _, keras = import_tf()
    x = keras.layers.AveragePooling2D(_pool_size(x.shape, 4), name=f"{EXIT_OUTPUT}_pool")(x)
    return _classifier(x, num_classes, EXIT_OUTPUT)


@exit_style("branchy", "BranchyNet: 3x3 conv (half the channels) + ReLU, 4x4 average pool, FC")
def branchy_head(x, point: ExitPoint, num_classes: int):
    _, keras = import_tf()
    x = keras.layers.Conv2D(max(1, int(x.shape[-1]) // 2), 3, padding="same", activation="relu",
                            kernel_initializer="he_normal", kernel_regularizer=keras.regularizers.l2(WEIGHT_DECAY),
                            name=f"{EXIT_OUTPUT}_conv")(x)
    x = keras.layers.AveragePooling2D(_pool_size(x.shape, 4), name=f"{EXIT_OUTPUT}_pool")(x)
    return _classifier(x, num_classes, EXIT_OUTPUT)


def _early_view(final_map, point: ExitPoint):
    """T-RecX early-view assistance: a depthwise conv shaped like the exit's, on the final map, pooled."""
    _, keras = import_tf()
    from toolchain.zoo.layers import ChannelSlice

    channels = point.depthwise_channels
    if int(final_map.shape[-1]) < channels:
        raise ToolchainError(f"early-view assistance needs {channels} channels on the final feature map, "
                             f"it has {final_map.shape[-1]}")
    x = ChannelSlice(0, channels, name="ev_slice")(final_map)
    x = keras.layers.DepthwiseConv2D(point.depthwise_kernel, strides=point.ev_stride, padding="same",
                                     activation="relu", depthwise_initializer="he_normal",
                                     depthwise_regularizer=keras.regularizers.l2(WEIGHT_DECAY), name=EV_DEPTHWISE)(x)
    x = keras.layers.AveragePooling2D(tuple(int(d) for d in x.shape[1:3]), name="ev_pool")(x)
    return keras.layers.Flatten(name="ev_flatten")(x)


def check_exit(model_name: str, style: str, ev_assist: bool = False) -> None:
    """Raise a ToolchainError if `model_name` cannot take an exit of this `style`."""
    entry = zoo.get(model_name)
    if style != "none" and style not in EXIT_STYLES:
        raise ToolchainError(f"unknown exit style {style!r}", f"styles: none, {', '.join(EXIT_STYLES)}")
    if style != "none" and model_name not in EXIT_POINTS:
        raise ToolchainError(f"zoo model {model_name!r} ({entry.task}) cannot have an early exit",
                             "an autoencoder has no class scores to exit on: use [exit] style = \"none\"")
    if ev_assist and style != "trecx":
        raise ToolchainError("early-view assistance (ev_assist) belongs to style \"trecx\"")


def build(model_name: str, *, input_shape=None, num_classes=None, style: str = "none", ev_assist: bool = False,
          width: float = 1.0):
    """The zoo model `model_name` with an early exit of `style` (or unchanged for "none"); `width` scales the
    backbone's channels and the exit head's with them."""
    check_exit(model_name, style, ev_assist)
    backbone = zoo.get(model_name).build(input_shape=input_shape, num_classes=num_classes, width=width)
    if style == "none":
        return backbone
    _, keras = import_tf()
    point = EXIT_POINTS[model_name].scaled(width)
    classifier = backbone.layers[-1]  # the zoo's final Dense (softmax), cloned below as `final`
    num_classes = int(classifier.units)
    exit_probs = EXIT_STYLES.get(style).head(backbone.get_layer(point.feature_layer).output, point, num_classes)
    features = classifier.input
    if ev_assist:
        early = _early_view(backbone.get_layer("avgpool").input, point)
        features = keras.layers.Concatenate(name="final_concat")([features, early])
    final = keras.layers.Dense.from_config({**classifier.get_config(), "name": FINAL_OUTPUT})(features)
    suffix = f"{style}_ev" if ev_assist else style
    return keras.Model(backbone.inputs, [exit_probs, final], name=f"{backbone.name}_{suffix}")


def default_loss_weight(model_name: str, style: str, cost_fraction: float | None = None) -> float:
    """The exit's loss weight when the recipe gives none (SDN: the final weight of its ramp, the
    exit's relative cost `cost_fraction`, see `exit_cost_fraction`)."""
    if style == "trecx":
        return EXIT_POINTS[model_name].trecx_loss_weight
    if style == "sdn":
        if cost_fraction is None:
            raise ValueError("SDN's default loss weight is the exit's cost fraction")
        return round(cost_fraction, 3)
    return 1.0


def exit_cost_fraction(model_name: str, input_shape=None, num_classes=None, width: float = 1.0) -> float:
    """MACs of the backbone up to the exit's feature map over the backbone's MACs (SDN's tau)."""
    _, keras = import_tf()
    backbone = zoo.get(model_name).build(input_shape=input_shape, num_classes=num_classes, width=width)
    prefix = keras.Model(backbone.inputs, backbone.get_layer(EXIT_POINTS[model_name].feature_layer).output)
    return zoo.count_macs(prefix) / zoo.count_macs(backbone)
