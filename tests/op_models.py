"""Small seeded tf_keras models, each converting to int8 TFLite with one op of interest.

Tests build one, convert it with `toolchain.export.tflite.convert_int8(model, representative(...))`
and compare the compiler's output with LiteRT's BUILTIN_REF kernels. Weights and biases are random
but fixed by `seed`; biases are non-zero so the bias path is exercised. Inputs stay small so a
conversion takes about a second.
"""
from __future__ import annotations

import numpy as np

from toolchain.tf import import_tf

IMAGE = (12, 12, 4)


def representative(shape, n: int = 32, seed: int = 0) -> np.ndarray:
    """`n` samples of `shape`, uniform in [-1, 1], float32."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, *shape)).astype(np.float32)


def _keras(seed: int):
    _, keras = import_tf()
    keras.utils.set_random_seed(seed)
    return keras


def _bias(keras):
    return keras.initializers.RandomUniform(-0.3, 0.3)


def _conv(keras, filters, kernel=3, **kwargs):
    return keras.layers.Conv2D(filters, kernel, padding="same", bias_initializer=_bias(keras),
                               **kwargs)


def conv2d(kernel=3, strides=1, padding="same", dilation=1, activation="relu", filters=8,
           input_shape=IMAGE, seed=0):
    """CONV_2D with per-channel weights; `activation` is fused (relu, relu6 or None)."""
    keras = _keras(seed)
    inputs = keras.Input(input_shape, name="input")
    if dilation == 1:
        layer = keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding,
                                    activation=activation, bias_initializer=_bias(keras),
                                    name="conv")
    else:
        layer = _dilated_layer(keras, "conv", filters, kernel, strides, padding, dilation,
                               activation)
    return keras.Model(inputs, layer(inputs), name="conv2d")


def depthwise(kernel=3, depth_multiplier=2, strides=2, padding="same", dilation=1,
              activation="relu", input_shape=IMAGE, seed=0):
    """DEPTHWISE_CONV_2D with `depth_multiplier` outputs per input channel."""
    keras = _keras(seed)
    inputs = keras.Input(input_shape, name="input")
    if dilation == 1:
        layer = keras.layers.DepthwiseConv2D(kernel, strides=strides, padding=padding,
                                             depth_multiplier=depth_multiplier,
                                             activation=activation,
                                             bias_initializer=_bias(keras), name="depthwise")
    else:
        layer = _dilated_layer(keras, "depthwise", depth_multiplier, kernel, strides, padding,
                               dilation, activation)
    return keras.Model(inputs, layer(inputs), name="depthwise")


def _dilated_layer(keras, kind, filters, kernel, strides, padding, dilation, activation):
    """A conv layer calling the TF op with `dilations` set.

    Keras' Conv2D/DepthwiseConv2D implement dilation as SPACE_TO_BATCH_ND -> conv ->
    BATCH_TO_SPACE_ND -> ADD (bias), and the TFLite converter keeps it that way; calling the op
    directly gives one CONV_2D / DEPTHWISE_CONV_2D with dilation factors, which we want to test.
    """
    tf, _ = import_tf()
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    sh, sw = (strides, strides) if isinstance(strides, int) else strides
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation

    class DilatedConv(keras.layers.Layer):
        def build(self, input_shape):
            in_c = int(input_shape[-1])
            self.kernel = self.add_weight(name="kernel", shape=(kh, kw, in_c, filters))
            out_c = filters if kind == "conv" else in_c * filters
            self.bias = self.add_weight(name="bias", shape=(out_c,), initializer=_bias(keras))

        def call(self, x):
            op = tf.raw_ops.Conv2D if kind == "conv" else tf.raw_ops.DepthwiseConv2dNative
            y = op(input=x, filter=self.kernel, strides=[1, sh, sw, 1],
                   padding=padding.upper(), dilations=[1, dh, dw, 1])
            return keras.activations.get(activation)(tf.nn.bias_add(y, self.bias))

    return DilatedConv(name=kind)


def dense(units=10, activation=None, input_shape=(24,), seed=0):
    """FULLY_CONNECTED, with `activation` relu fused or None."""
    keras = _keras(seed)
    inputs = keras.Input(input_shape, name="input")
    x = keras.layers.Dense(units, activation=activation, bias_initializer=_bias(keras),
                           name="dense")(inputs)
    return keras.Model(inputs, x, name="dense")


def avgpool(pool=2, strides=None, padding="valid", input_shape=IMAGE, seed=0):
    """AVERAGE_POOL_2D straight on the input (`strides` None = `pool`)."""
    keras = _keras(seed)
    inputs = keras.Input(input_shape, name="input")
    x = keras.layers.AveragePooling2D(pool, strides=strides, padding=padding, name="avgpool")(inputs)
    return keras.Model(inputs, x, name="avgpool")


def maxpool(pool=2, strides=None, padding="valid", input_shape=IMAGE, seed=0):
    """MAX_POOL_2D straight on the input (`strides` None = `pool`)."""
    keras = _keras(seed)
    inputs = keras.Input(input_shape, name="input")
    x = keras.layers.MaxPooling2D(pool, strides=strides, padding=padding, name="maxpool")(inputs)
    return keras.Model(inputs, x, name="maxpool")


def mean(input_shape=IMAGE, seed=0):
    """CONV_2D -> MEAN over H and W (what GlobalAveragePooling2D becomes)."""
    keras = _keras(seed)
    inputs = keras.Input(input_shape, name="input")
    x = _conv(keras, 8, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, x, name="mean")


def add(activation=None, input_shape=IMAGE, seed=0):
    """Two CONV_2D branches -> ADD (`activation` relu is fused into the ADD)."""
    keras = _keras(seed)
    inputs = keras.Input(input_shape, name="input")
    a = _conv(keras, 8, name="conv_a")(inputs)
    b = _conv(keras, 8, 1, activation="relu", name="conv_b")(inputs)
    x = keras.layers.Add(name="add")([a, b])
    if activation:
        x = keras.layers.Activation(activation, name="add_act")(x)
    return keras.Model(inputs, x, name="add")


def softmax(input_shape=(16,), seed=0):
    """SOFTMAX straight on the input, over the last axis."""
    keras = _keras(seed)
    inputs = keras.Input(input_shape, name="input")
    x = keras.layers.Softmax(name="softmax")(inputs)
    return keras.Model(inputs, x, name="softmax")


def zero_padding(after="conv", padding=((1, 2), (2, 1)), input_shape=IMAGE, seed=0):
    """ZeroPadding2D -> PAD, then a VALID CONV_2D (`after="conv"`) or MAX_POOL_2D (`"maxpool"`).

    Zero padding before a max pool is not SAME padding (SAME ignores the border), so that PAD
    can never be folded into the pool.
    """
    keras = _keras(seed)
    inputs = keras.Input(input_shape, name="input")
    x = keras.layers.ZeroPadding2D(padding, name="pad")(inputs)
    if after == "conv":
        x = keras.layers.Conv2D(8, 3, padding="valid", activation="relu",
                                bias_initializer=_bias(keras), name="conv")(x)
    elif after == "maxpool":
        x = keras.layers.MaxPooling2D(3, strides=2, padding="valid", name="maxpool")(x)
    else:
        raise ValueError(f"after must be 'conv' or 'maxpool', not {after!r}")
    return keras.Model(inputs, x, name=f"zero_padding_{after}")


def concatenation(input_shape=IMAGE, seed=0):
    """Two CONV_2D branches of 8 and 4 channels -> CONCATENATION on channels."""
    keras = _keras(seed)
    inputs = keras.Input(input_shape, name="input")
    a = _conv(keras, 8, activation="relu", name="conv_a")(inputs)
    b = _conv(keras, 4, 1, name="conv_b")(inputs)
    x = keras.layers.Concatenate(axis=-1, name="concat")([a, b])
    return keras.Model(inputs, x, name="concatenation")


def reshape(kind="flatten", input_shape=IMAGE, seed=0):
    """CONV_2D -> RESHAPE, from Flatten (`kind="flatten"`) or Reshape to [H*W, C] (`"reshape"`).

    Keras' Reshape keeps the batch dimension dynamic, which the converter turns into
    SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE; a fixed batch of 1 leaves a single RESHAPE.
    """
    keras = _keras(seed)
    inputs = keras.Input(input_shape, batch_size=1 if kind == "reshape" else None, name="input")
    x = _conv(keras, 8, activation="relu", name="conv")(inputs)
    if kind == "flatten":
        x = keras.layers.Flatten(name="flatten")(x)
    elif kind == "reshape":
        x = keras.layers.Reshape((input_shape[0] * input_shape[1], 8), name="reshape")(x)
    else:
        raise ValueError(f"kind must be 'flatten' or 'reshape', not {kind!r}")
    return keras.Model(inputs, x, name=f"reshape_{kind}")


def two_outputs(num_classes=5, input_shape=IMAGE, seed=0):
    """An early exit: softmax heads `exit_1` (after one conv) and `final` (after three).

    The converter orders the outputs in reverse; map them by signature name.
    """
    keras = _keras(seed)
    inputs = keras.Input(input_shape, name="input")
    x = _conv(keras, 8, activation="relu", name="conv1")(inputs)
    e = keras.layers.GlobalAveragePooling2D(name="exit_1_gap")(x)
    exit_1 = keras.layers.Dense(num_classes, activation="softmax", bias_initializer=_bias(keras),
                                name="exit_1")(e)
    x = _conv(keras, 8, strides=2, activation="relu", name="conv2")(x)
    x = _conv(keras, 16, activation="relu", name="conv3")(x)
    x = keras.layers.Flatten(name="flatten")(keras.layers.AveragePooling2D(6, name="avgpool")(x))
    final = keras.layers.Dense(num_classes, activation="softmax", bias_initializer=_bias(keras),
                               name="final")(x)
    return keras.Model(inputs, [exit_1, final], name="two_outputs")


def relu_standalone(input_shape=IMAGE, seed=0):
    """A RELU op of its own: on the model input nothing precedes it to fuse into."""
    keras = _keras(seed)
    inputs = keras.Input(input_shape, name="input")
    x = keras.layers.ReLU(name="relu")(inputs)
    x = _conv(keras, 8, name="conv")(x)
    return keras.Model(inputs, x, name="relu_standalone")


# name -> (builder, op the converted model must contain)
BUILDERS = {
    "conv2d": (conv2d, "CONV_2D"),
    "depthwise": (depthwise, "DEPTHWISE_CONV_2D"),
    "dense": (dense, "FULLY_CONNECTED"),
    "avgpool": (avgpool, "AVERAGE_POOL_2D"),
    "maxpool": (maxpool, "MAX_POOL_2D"),
    "mean": (mean, "MEAN"),
    "add": (add, "ADD"),
    "softmax": (softmax, "SOFTMAX"),
    "zero_padding": (zero_padding, "PAD"),
    "concatenation": (concatenation, "CONCATENATION"),
    "reshape": (reshape, "RESHAPE"),
    "two_outputs": (two_outputs, "SOFTMAX"),
    "relu_standalone": (relu_standalone, "RELU"),
}


def activation(kind="sigmoid", input_shape=(16, 16), seed=0, **kwargs):
    """One unary activation straight on the input: "sigmoid" (LOGISTIC), "tanh", "hard_swish" (x * relu6(x + 3)
    / 6, which the converter fuses into HARD_SWISH), "leaky_relu" (`alpha`), "elu", "prelu" (`shared_axes`).
    The converter leaves ELU in float (its int8 conversion refuses "elu"); tests make an int8 ELU by editing the
    TANH model's operator code (test_lut_ops)."""
    keras = _keras(seed)
    inputs = keras.Input(input_shape, name="input")
    if kind in ("sigmoid", "tanh"):
        layer = keras.layers.Activation(kind, name=kind)
    elif kind == "hard_swish":
        tf, _ = import_tf()
        layer = keras.layers.Lambda(lambda x: x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0), name=kind)
    elif kind == "leaky_relu":
        layer = keras.layers.LeakyReLU(alpha=kwargs.get("alpha", 0.3), name=kind)
    elif kind == "elu":
        layer = keras.layers.ELU(name=kind)
    elif kind == "prelu":
        layer = keras.layers.PReLU(alpha_initializer=keras.initializers.RandomUniform(-0.5, 0.9),
                                   shared_axes=kwargs.get("shared_axes"), name=kind)
    else:
        raise ValueError(f"unknown activation {kind!r}")
    return keras.Model(inputs, layer(inputs), name=kind)


ACTIVATION_OPS = {"sigmoid": "LOGISTIC", "tanh": "TANH", "hard_swish": "HARD_SWISH", "leaky_relu": "LEAKY_RELU",
                  "prelu": "PRELU"}  # the ones that convert to int8
BUILDERS.update({f"activation_{kind}": (lambda kind=kind, **kw: activation(kind, **kw), op)
                 for kind, op in ACTIVATION_OPS.items()})


def activation_chain(input_shape=(6, 6, 8), seed=0):
    """CONV_2D -> TANH -> HARD_SWISH -> LEAKY_RELU -> PRELU (per channel) -> LOGISTIC: every table op in one model."""
    tf, _ = import_tf()
    keras = _keras(seed)
    inputs = keras.Input(input_shape, name="input")
    x = _conv(keras, 8, name="conv")(inputs)
    x = keras.layers.Activation("tanh", name="tanh")(x)
    x = _conv(keras, 8, 1, name="conv_2")(x)
    x = keras.layers.Lambda(lambda v: v * tf.nn.relu6(v + 3.0) * (1.0 / 6.0), name="hard_swish")(x)
    x = keras.layers.LeakyReLU(alpha=0.1, name="leaky_relu")(x)
    x = keras.layers.PReLU(alpha_initializer=keras.initializers.RandomUniform(-0.5, 0.9), shared_axes=[1, 2],
                           name="prelu")(x)
    x = keras.layers.Activation("sigmoid", name="sigmoid")(x)
    return keras.Model(inputs, x, name="activation_chain")


# -- element-wise binary ops with broadcasting (tests/test_binary_ops.py) -----------------------------------------

BINARY_LAYERS = {"ADD": "Add", "SUB": "Subtract", "MUL": "Multiply", "MAXIMUM": "Maximum", "MINIMUM": "Minimum"}
BINARY_TF = {"ADD": "add", "SUB": "subtract", "MUL": "multiply", "MAXIMUM": "maximum", "MINIMUM": "minimum",
             "SQUARED_DIFFERENCE": "squared_difference"}


def _operand(keras, kind, x, shape, rng, name):
    """An operand of the binary op from the image feature map x [1, H, W, D]: `full` x itself, `conv` another
    [1, H, W, D] branch, `hw1` [1, H, W, 1], `w1` [1, 1, W, 1], `c1` [1, 1, 1, D] (activations); `const_c` [D],
    `const_w` [1, 1, W, 1], `scalar` a constant scalar."""
    h, w, d = shape
    if kind == "full":
        return x
    if kind == "conv":
        return _conv(keras, d, 1, name=f"{name}_conv")(x)
    if kind == "hw1":
        return _conv(keras, 1, 1, name=f"{name}_conv")(x)
    if kind == "w1":
        pooled = keras.layers.AveragePooling2D((h, 1), name=f"{name}_pool")(x)
        return _conv(keras, 1, 1, name=f"{name}_conv")(pooled)
    if kind == "c1":
        return keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_gap")(x)
    const_shape = {"const_c": (d,), "const_w": (1, 1, w, 1), "scalar": ()}[kind]
    return rng.uniform(-1.0, 1.0, const_shape).astype(np.float32)


def binary(op="ADD", first="full", second="conv", activation=None, shape=(6, 5, 3), seed=0):
    """input [H, W, C] -> CONV_2D + ReLU x [1, H, W, D] -> op(first, second) (operands as in `_operand`), optionally
    followed by a ReLU the converter fuses. Two activations go through the Keras merge layer (ADD, SUB, MUL,
    MAXIMUM, MINIMUM); a constant operand or SQUARED_DIFFERENCE through tf.math in a Lambda."""
    tf, _ = import_tf()
    keras = _keras(seed)
    rng = np.random.default_rng(seed)
    h, w, d = shape
    inputs = keras.Input((h, w, 4), name="input")
    x = _conv(keras, d, 3, activation="relu", name="conv")(inputs)  # the ReLU: a constant cannot fold into it
    a = _operand(keras, first, x, shape, rng, "a")
    b = _operand(keras, second, x, shape, rng, "b")
    fn = getattr(tf.math, BINARY_TF[op])
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        tensor, const, const_first = (b, a, True) if isinstance(a, np.ndarray) else (a, b, False)
        y = keras.layers.Lambda(lambda t: fn(const, t) if const_first else fn(t, const), name="binary")(tensor)
    elif op in BINARY_LAYERS:
        y = getattr(keras.layers, BINARY_LAYERS[op])(name="binary")([a, b])
    else:
        y = keras.layers.Lambda(lambda t: fn(t[0], t[1]), name="binary")([a, b])
    if activation:
        y = keras.layers.Activation(activation, name="binary_act")(y)
    return keras.Model(inputs, y, name=f"binary_{op.lower()}")


def batchnorm(after="input", input_shape=(6, 5, 3), seed=0):
    """A standalone BatchNormalization (random trained statistics, so it is not the identity) where the converter
    has nothing to fold it into: on the model input (`after` "input") or after a max pool ("pool"). It becomes MUL
    and ADD with per-channel [C] constants. (After a Conv2D or Dense layer the converter folds it into the weights.)"""
    keras = _keras(seed)

    def init(lo, hi, k):
        return keras.initializers.RandomUniform(lo, hi, seed=seed * 10 + k)

    bn = keras.layers.BatchNormalization(gamma_initializer=init(0.5, 1.5, 1), beta_initializer=init(-0.3, 0.3, 2),
                                         moving_mean_initializer=init(-0.3, 0.3, 3),
                                         moving_variance_initializer=init(0.5, 1.5, 4), name="bn")
    inputs = keras.Input(input_shape, name="input")
    x = inputs
    if after == "pool":
        x = keras.layers.MaxPooling2D(2, name="pool")(_conv(keras, 6, 3, name="conv0")(x))
    x = _conv(keras, 4, 3, name="conv")(bn(x))
    return keras.Model(inputs, x, name="batchnorm")


def mobilenet_v3_small_like(width=0.35, size=96, classes=4, seed=0):
    """MobileNetV3-Small's structure at width 0.35, 96x96: hard-swish, squeeze-and-excitation (global pool,
    two 1x1 convs, hard-sigmoid gate, multiply), inverted residuals; fewer blocks than the real one."""
    keras = _keras(seed)
    layers = keras.layers

    def channels(c):
        return max(8, int(c * width + 4) // 8 * 8)

    def hard_sigmoid(x):
        return layers.Rescaling(1.0 / 6.0)(layers.ReLU(6.0)(layers.Rescaling(1.0, offset=3.0)(x)))

    def hard_swish(x):
        return layers.Multiply()([x, hard_sigmoid(x)])

    def squeeze_excite(x, c):
        s = layers.GlobalAveragePooling2D(keepdims=True)(x)
        s = layers.Conv2D(max(8, c // 4), 1, activation="relu")(s)
        return layers.Multiply()([x, hard_sigmoid(layers.Conv2D(c, 1)(s))])

    def block(x, expand, out, kernel, stride, se, swish):
        act = hard_swish if swish else layers.ReLU()
        c_in, y = x.shape[-1], layers.Conv2D(channels(expand), 1, use_bias=False)(x)
        y = act(layers.BatchNormalization()(y))
        y = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False)(y)
        y = act(layers.BatchNormalization()(y))
        if se:
            y = squeeze_excite(y, channels(expand))
        y = layers.BatchNormalization()(layers.Conv2D(channels(out), 1, use_bias=False)(y))
        return layers.Add()([x, y]) if stride == 1 and c_in == channels(out) else y

    inputs = keras.Input((size, size, 3), name="input")
    x = hard_swish(layers.BatchNormalization()(layers.Conv2D(channels(16), 3, 2, padding="same",
                                                                use_bias=False)(inputs)))
    for expand, out, kernel, stride, se, swish in ((16, 16, 3, 2, True, False), (72, 24, 3, 2, False, False),
                                                   (88, 24, 3, 1, False, False), (96, 40, 5, 2, True, True),
                                                   (240, 40, 5, 1, True, True), (288, 96, 5, 2, True, True)):
        x = block(x, expand, out, kernel, stride, se, swish)
    x = layers.GlobalAveragePooling2D()(hard_swish(layers.Conv2D(channels(576), 1)(x)))
    x = hard_swish(layers.Dense(128)(x))
    return keras.Model(inputs, layers.Softmax()(layers.Dense(classes)(x)), name="mobilenet_v3_small_like")


def gru_keywords(frames=49, coefficients=10, units=24, classes=4, seed=0):
    keras = _keras(seed)
    inputs = keras.Input((frames, coefficients), name="mfcc")
    x = keras.layers.GRU(units, unroll=True)(inputs)
    return keras.Model(inputs, keras.layers.Softmax()(keras.layers.Dense(classes)(x)), name="gru_keywords")


# The common tf_keras layers (issue 17's acceptance): name -> (input shape without the batch, the layers applied to
# the input).
LAYERS = {
    "Dense": ((12,), lambda k, x: k.layers.Dense(6, activation="relu")(x)),
    "Dense-3d": ((5, 12), lambda k, x: k.layers.Dense(6)(x)),
    "Conv1D": ((16, 3), lambda k, x: k.layers.Conv1D(5, 3, padding="same", activation="relu")(x)),
    "Conv2D": ((8, 8, 3), lambda k, x: k.layers.Conv2D(6, 3, strides=2, padding="same")(x)),
    "Conv2D-dilated": ((10, 10, 3), lambda k, x: k.layers.Conv2D(4, 3, dilation_rate=2, padding="same")(x)),
    "DepthwiseConv2D": ((8, 8, 4), lambda k, x: k.layers.DepthwiseConv2D(3, padding="same")(x)),
    "SeparableConv2D": ((8, 8, 4), lambda k, x: k.layers.SeparableConv2D(6, 3, padding="same")(x)),
    "Conv2DTranspose": ((5, 5, 4), lambda k, x: k.layers.Conv2DTranspose(3, 3, strides=2, padding="same")(x)),
    "BatchNormalization": ((6, 6, 3), lambda k, x: k.layers.BatchNormalization()(x)),
    "ReLU": ((6, 6, 3), lambda k, x: k.layers.ReLU()(k.layers.Conv2D(4, 1)(x))),
    "ReLU6": ((6, 6, 3), lambda k, x: k.layers.ReLU(6.0)(k.layers.Conv2D(4, 1)(x))),
    "LeakyReLU": ((6, 6, 3), lambda k, x: k.layers.LeakyReLU(0.2)(k.layers.Conv2D(4, 1)(x))),
    "PReLU": ((6, 6, 3), lambda k, x: k.layers.PReLU(shared_axes=[1, 2])(k.layers.Conv2D(4, 1)(x))),
    "sigmoid": ((16,), lambda k, x: k.layers.Activation("sigmoid")(k.layers.Dense(8)(x))),
    "tanh": ((16,), lambda k, x: k.layers.Activation("tanh")(k.layers.Dense(8)(x))),
    "swish": ((16,), lambda k, x: k.layers.Activation("swish")(k.layers.Dense(8)(x))),
    "hard_sigmoid": ((16,), lambda k, x: k.layers.Activation("hard_sigmoid")(k.layers.Dense(8)(x))),
    "Softmax": ((16,), lambda k, x: k.layers.Softmax()(k.layers.Dense(8)(x))),
    "MaxPooling2D": ((8, 8, 3), lambda k, x: k.layers.MaxPooling2D(2)(x)),
    "AveragePooling2D": ((8, 8, 3), lambda k, x: k.layers.AveragePooling2D(2)(x)),
    "MaxPooling1D": ((16, 3), lambda k, x: k.layers.MaxPooling1D(2)(x)),
    "GlobalAveragePooling2D": ((6, 6, 5), lambda k, x: k.layers.GlobalAveragePooling2D()(x)),
    "GlobalMaxPooling2D": ((6, 6, 5), lambda k, x: k.layers.GlobalMaxPooling2D()(x)),
    "GlobalAveragePooling1D": ((12, 5), lambda k, x: k.layers.GlobalAveragePooling1D()(x)),
    "UpSampling2D": ((4, 4, 3), lambda k, x: k.layers.UpSampling2D(2)(x)),
    "UpSampling2D-bilinear": ((4, 4, 3), lambda k, x: k.layers.UpSampling2D(2, interpolation="bilinear")(x)),
    "ZeroPadding2D": ((6, 6, 3), lambda k, x: k.layers.ZeroPadding2D(((1, 2), (0, 1)))(x)),
    "Cropping2D": ((8, 8, 3), lambda k, x: k.layers.Cropping2D(((1, 2), (2, 1)))(x)),
    "Flatten": ((4, 4, 3), lambda k, x: k.layers.Dense(5)(k.layers.Flatten()(x))),
    "Reshape": ((4, 6), lambda k, x: k.layers.Reshape((6, 4))(k.layers.Dense(6)(x))),
    "Permute": ((4, 6, 2), lambda k, x: k.layers.Permute((2, 1, 3))(x)),
    "Concatenate": ((6, 6, 3), lambda k, x: k.layers.Concatenate()([x, k.layers.Conv2D(2, 1)(x)])),
    "Add": ((6, 6, 3), lambda k, x: k.layers.Add()([x, k.layers.Conv2D(3, 1)(x)])),
    "Subtract": ((6, 6, 3), lambda k, x: k.layers.Subtract()([x, k.layers.Conv2D(3, 1)(x)])),
    "Multiply": ((6, 6, 3), lambda k, x: k.layers.Multiply()([x, k.layers.Conv2D(3, 1)(x)])),
    "Maximum": ((6, 6, 3), lambda k, x: k.layers.Maximum()([x, k.layers.Conv2D(3, 1)(x)])),
    "Minimum": ((6, 6, 3), lambda k, x: k.layers.Minimum()([x, k.layers.Conv2D(3, 1)(x)])),
    "Average": ((6, 6, 3), lambda k, x: k.layers.Average()([x, k.layers.Conv2D(3, 1)(x)])),
    "Dropout": ((12,), lambda k, x: k.layers.Dense(4)(k.layers.Dropout(0.3)(x))),
    "SimpleRNN": ((8, 6), lambda k, x: k.layers.SimpleRNN(8, unroll=True)(x)),
    "GRU": ((8, 6), lambda k, x: k.layers.GRU(8, unroll=True)(x)),
    "LSTM": ((8, 6), lambda k, x: k.layers.LSTM(8, unroll=True)(x)),
}


def layer_model(name: str, seed: int = 0):
    """(the model of LAYERS[name] with Keras's default unknown batch size, its input shape)."""
    shape, layer = LAYERS[name]
    keras = _keras(seed)
    inputs = keras.Input(shape, name="input")
    return keras.Model(inputs, layer(keras, inputs), name=name.replace("-", "_")), shape
