"""The fuzzer's seeds: small int8 models the op tests build, one per operator we compile."""
from __future__ import annotations

from pathlib import Path

import op_models as om

IMAGE_SEEDS = {
    "conv": om.conv2d, "depthwise": om.depthwise, "dense": om.dense, "avgpool": om.avgpool,
    "maxpool": om.maxpool, "mean": om.mean, "add": om.add, "softmax": om.softmax, "pad": om.zero_padding,
    "concat": om.concatenation, "reshape": om.reshape, "two_outputs": om.two_outputs,
}


def _tf_keras(seed: int = 0):
    from toolchain.tf import import_tf

    tf, keras = import_tf()
    keras.utils.set_random_seed(seed)
    return tf, keras


def transpose_conv():
    """TRANSPOSE_CONV with a bias, SAME padding, stride 2, then one with VALID and output padding."""
    _, keras = _tf_keras()
    inputs = keras.Input((4, 5, 3), batch_size=1)
    x = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same")(inputs)
    return keras.Model(inputs, keras.layers.Conv2DTranspose(3, 3, strides=2, padding="valid", output_padding=1)(x))


def resize():
    """RESIZE_BILINEAR (half-pixel centres) then RESIZE_NEAREST_NEIGHBOR (align_corners): index tables."""
    tf, keras = _tf_keras()
    inputs = keras.Input((4, 5, 3), batch_size=1)
    x = keras.layers.UpSampling2D((2, 3), interpolation="bilinear")(inputs)
    near = keras.layers.Lambda(lambda v: tf.compat.v1.image.resize_nearest_neighbor(v, (5, 7), align_corners=True))
    return keras.Model(inputs, near(x))


def reduce():
    """REDUCE_MAX over the channels (keep_dims) and MEAN over the height: non-spatial axes."""
    tf, keras = _tf_keras()
    inputs = keras.Input((5, 4, 6), batch_size=1)
    x = keras.layers.Lambda(lambda v: tf.reduce_max(v, axis=[3], keepdims=True))(inputs)
    x = keras.layers.Conv2D(3, 1)(x)
    return keras.Model(inputs, keras.layers.Lambda(lambda v: tf.reduce_mean(v, axis=[1]))(x))


def split_pack_gather():
    """SPLIT, UNPACK, PACK and GATHER between dense layers (several outputs per op)."""
    tf, keras = _tf_keras()
    inputs = keras.Input((6, 4), batch_size=1)
    x = keras.layers.Dense(4)(inputs)
    a, b = keras.layers.Lambda(lambda v: tf.split(v, 2, axis=1))(x)
    rows = keras.layers.Lambda(lambda v: tf.unstack(v, axis=1))(a)
    packed = keras.layers.Lambda(lambda vs: tf.stack(vs, axis=2))(rows)
    gathered = keras.layers.Lambda(lambda v: tf.gather(v, [2, 0, 2], axis=1))(b)
    parts = [keras.layers.Flatten()(keras.layers.Dense(2)(p)) for p in (packed, gathered)]
    return keras.Model(inputs, keras.layers.Concatenate()(parts))


def unknown_batch():
    """Keras's default unknown batch: SHAPE/STRIDED_SLICE/PACK shape arithmetic around a RESHAPE, and a
    dilated convolution that the converter writes as SPACE_TO_BATCH_ND + CONV_2D + BATCH_TO_SPACE_ND."""
    _, keras = _tf_keras()
    inputs = keras.Input((8, 6, 2))
    x = keras.layers.Conv2D(3, 3, dilation_rate=2, padding="same", activation="relu")(inputs)
    x = keras.layers.Reshape((8, 18))(x)
    return keras.Model(inputs, keras.layers.Dense(4)(x))


NEW_OP_SEEDS = {"transpose_conv": transpose_conv, "resize": resize, "reduce": reduce,
                "split_pack_gather": split_pack_gather, "unknown_batch": unknown_batch}
SEED_MODELS = IMAGE_SEEDS | NEW_OP_SEEDS


def make_seeds(out_dir: Path, names=None) -> list[Path]:
    """Convert the seed models to int8 .tflite files in `out_dir` (kept: an existing file is reused)."""
    from toolchain.export.tflite import convert_int8

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names or SEED_MODELS:
        path = out_dir / f"{name}.tflite"
        if not path.exists():
            model = SEED_MODELS[name]()
            shape = tuple(d for d in model.input_shape[1:])
            convert_int8(model, om.representative(shape, n=16), path)
        paths.append(path)
    return paths
