"""REDUCE_MAX, REDUCE_MIN and MEAN over any constant axes, RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR (issue 17):
bit-exact with LiteRT BUILTIN_REF (and tflite-micro) on randomised shapes and axes and on the Keras layers that
become them; what the kernels do not cover is refused by name before any C is written."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import op_models as om
import tflite_edit as te
from conftest import compile_and_check, convert
from toolchain.compiler import compile_model
from toolchain.compiler.frontend import load_tflite
from toolchain.compiler.ops import variants
from toolchain.compiler.ops.resize import bilinear_axis, nearest_axis
from toolchain.errors import ToolchainError

REDUCERS = {"max": "REDUCE_MAX", "min": "REDUCE_MIN", "mean": "MEAN"}


def _random_cases(count: int, seed: int = 1) -> list[tuple[tuple[int, ...], tuple[int, ...], bool]]:
    """(input shape without the batch of 1, axes of the batched tensor, keep_dims): ranks 2 to 4, a subset of the
    axes (the batch axis may be one of them) with an axis past the batch, keep_dims alternating."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(count):
        rank = 2 + i % 3
        shape = tuple(int(d) for d in rng.integers(2, 6, rank - 1))
        # Past the batch axis (which alone is no reduction: the converter drops it), the batch axis now and then.
        picked = rng.choice(np.arange(1, rank), int(rng.integers(1, rank)), replace=False)
        axes = tuple(sorted({int(a) for a in picked} | ({0} if rng.random() < 0.3 else set())))
        cases.append((shape, axes, bool(i % 2)))
    return cases


CASES = _random_cases(6) + [((4, 3), (0, 1, 2), False)]  # and every axis: a scalar output


def reduce_model(keras, kind: str, shape, axes, keep_dims: bool):
    """The reduction straight on the int8 input (MEAN's output calibrates to its own scale and zero point)."""
    from toolchain.tf import import_tf

    tf, _ = import_tf()
    fn = {"max": tf.reduce_max, "min": tf.reduce_min, "mean": tf.reduce_mean}[kind]
    inputs = keras.Input(shape, batch_size=1, name="input")
    out = keras.layers.Lambda(lambda v: fn(v, axis=list(axes), keepdims=keep_dims), name=kind)(inputs)
    return keras.Model(inputs, out)


def layer_model(keras, layer, shape):
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape, batch_size=1, name="input")
    return keras.Model(inputs, layer(inputs))


def _kinds(tflite) -> list[str]:
    return [op.kind for op in load_tflite(tflite).ops]


@pytest.mark.parametrize("kind", sorted(REDUCERS))
@pytest.mark.parametrize("shape, axes, keep_dims", CASES, ids=[f"{s}-{a}-{k}" for s, a, k in CASES])
def test_reductions_over_random_axes_are_bit_exact(keras, tmp_path, kind, shape, axes, keep_dims):
    tflite = convert(reduce_model(keras, kind, shape, axes, keep_dims), om.representative(shape, n=8),
                     tmp_path / "r.tflite")
    assert _kinds(tflite) == [REDUCERS[kind]]
    g = load_tflite(tflite)
    inp, out = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    if kind == "mean":
        assert inp.quant != out.quant  # the requantizing case
    compile_and_check(tflite, tmp_path / "out", samples=4)


def test_mean_with_the_input_quantization_is_bit_exact(keras, tmp_path):
    """In and out sharing scale and zero point: the same QuantizedMeanOrSum (multiplier 1/count)."""
    path = convert(reduce_model(keras, "mean", (4, 5, 3), (1, 3), False), om.representative((4, 5, 3), n=8),
                   tmp_path / "m.tflite")

    def same_quant(model):
        sg = te.subgraph(model)
        op = sg.operators[te.op_index(model, "MEAN")]
        src, dst = sg.tensors[op.inputs[0]].quantization, sg.tensors[op.outputs[0]].quantization
        dst.scale, dst.zeroPoint = list(src.scale), list(src.zeroPoint)

    path.write_bytes(te.edit(path.read_bytes(), same_quant))
    g = load_tflite(path)
    assert g.tensors[g.inputs[0]].quant == g.tensors[g.outputs[0]].quant
    compile_and_check(path, tmp_path / "out", samples=6)


LAYERS = {
    "global_max_2d": (lambda k: k.layers.GlobalMaxPooling2D(), (5, 6, 3), "REDUCE_MAX"),
    "global_max_2d_keep": (lambda k: k.layers.GlobalMaxPooling2D(keepdims=True), (4, 3, 5), "REDUCE_MAX"),
    "global_max_1d": (lambda k: k.layers.GlobalMaxPooling1D(), (7, 4), "REDUCE_MAX"),
    "global_avg_1d": (lambda k: k.layers.GlobalAveragePooling1D(), (7, 4), "MEAN"),
    "upsample_nearest_2": (lambda k: k.layers.UpSampling2D(2), (5, 6, 3), "RESIZE_NEAREST_NEIGHBOR"),
    "upsample_nearest_2x3": (lambda k: k.layers.UpSampling2D((2, 3)), (4, 3, 2), "RESIZE_NEAREST_NEIGHBOR"),
    "upsample_bilinear_2": (lambda k: k.layers.UpSampling2D(2, interpolation="bilinear"), (5, 6, 3),
                            "RESIZE_BILINEAR"),
    "upsample_bilinear_2x3": (lambda k: k.layers.UpSampling2D((2, 3), interpolation="bilinear"), (4, 3, 2),
                              "RESIZE_BILINEAR"),
    "resizing_nearest": (lambda k: k.layers.Resizing(7, 9, interpolation="nearest"), (5, 6, 3),
                         "RESIZE_NEAREST_NEIGHBOR"),
    "resizing_bilinear_down": (lambda k: k.layers.Resizing(3, 4, interpolation="bilinear"), (7, 9, 2),
                               "RESIZE_BILINEAR"),
    "resizing_bilinear": (lambda k: k.layers.Resizing(11, 5, interpolation="bilinear"), (5, 6, 3),
                          "RESIZE_BILINEAR"),
}


def _align_corners(kind: str, size):
    """tf.compat.v1's resize ops: align_corners set, half_pixel_centers not (the v2 layers never do that)."""
    from toolchain.tf import import_tf

    tf, _ = import_tf()
    fn = {"nearest": tf.compat.v1.image.resize_nearest_neighbor, "bilinear": tf.compat.v1.image.resize_bilinear}
    return lambda k: k.layers.Lambda(lambda v: fn[kind](v, size, align_corners=True))


def _legacy(kind: str, size):
    """Neither align_corners nor half_pixel_centers (TF1's default)."""
    from toolchain.tf import import_tf

    tf, _ = import_tf()
    fn = {"nearest": tf.compat.v1.image.resize_nearest_neighbor, "bilinear": tf.compat.v1.image.resize_bilinear}
    return lambda k: k.layers.Lambda(lambda v: fn[kind](v, size))


LAYERS |= {
    "nearest_align_corners": (_align_corners("nearest", (9, 7)), (5, 6, 3), "RESIZE_NEAREST_NEIGHBOR"),
    "bilinear_align_corners": (_align_corners("bilinear", (9, 4)), (5, 6, 3), "RESIZE_BILINEAR"),
    "nearest_legacy": (_legacy("nearest", (8, 13)), (5, 6, 3), "RESIZE_NEAREST_NEIGHBOR"),
    "bilinear_legacy": (_legacy("bilinear", (8, 13)), (5, 6, 3), "RESIZE_BILINEAR"),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_keras_layers_are_bit_exact(keras, tmp_path, name):
    make, shape, kind = LAYERS[name]
    tflite = convert(layer_model(keras, make(keras), shape), om.representative(shape, n=8), tmp_path / "l.tflite")
    assert kind in _kinds(tflite)
    compile_and_check(tflite, tmp_path / "out", samples=4)


@pytest.mark.parametrize("name", ["global_max_2d", "global_avg_1d", "upsample_nearest_2x3", "resizing_bilinear",
                                  "bilinear_align_corners"])
def test_bit_exact_with_tflite_micro_too(keras, tmp_path, name):
    pytest.importorskip("tflite_micro")
    make, shape, _ = LAYERS[name]
    tflite = convert(layer_model(keras, make(keras), shape), om.representative(shape, n=8), tmp_path / "l.tflite")
    compile_and_check(tflite, tmp_path / "out", samples=4, reference="tflm")


def test_tables_follow_litert_arithmetic():
    """Hand-worked rows. Bilinear 3 -> 6 with half-pixel centres: scale 512/1024, the first sampling point
    -256/1024 lies before the first pixel (row 0 twice, a negative weight), the last one past the last pixel."""
    assert nearest_axis(3, 6, False, True) == [0, 0, 1, 1, 2, 2]
    assert nearest_axis(5, 3, True, False) == [0, 2, 4]
    assert nearest_axis(4, 6, False, False) == [0, 0, 1, 2, 2, 3]  # floor(i * 2/3)
    lower, upper, weight = bilinear_axis(3, 6, False, True)
    assert lower == [0, 0, 0, 1, 1, 2] and upper == [0, 1, 1, 2, 2, 2]
    assert weight == [-256, 256, 768, 256, 768, 256]
    assert bilinear_axis(5, 3, True, False) == ([0, 2, 4], [0, 2, 4], [0, 0, 0])


def test_only_the_spatial_mean_takes_the_fast_kernels(keras, tmp_path):
    spatial = convert(layer_model(keras, keras.layers.GlobalAveragePooling2D(), (4, 5, 3)),
                      om.representative((4, 5, 3), n=4), tmp_path / "s.tflite")
    channels = convert(reduce_model(keras, "mean", (4, 5, 3), (3,), True), om.representative((4, 5, 3), n=4),
                       tmp_path / "c.tflite")
    for path, fast in ((spatial, True), (channels, False)):
        g = load_tflite(path)
        (op,) = g.ops
        for target in ("dsp", "mve"):
            assert variants.kernel_for(op, g, target) == (f"tm_mean_s8_{target}" if fast else "tm_mean_s8")


def _edited(path, change):
    path.write_bytes(te.edit(path.read_bytes(), change))
    return path


def test_bilinear_with_align_corners_and_half_pixel_centers_is_refused(keras, tmp_path):
    make, shape, _ = LAYERS["upsample_bilinear_2"]
    path = convert(layer_model(keras, make(keras), shape), om.representative(shape, n=4), tmp_path / "b.tflite")

    def both(model):
        te.operator(model, "RESIZE_BILINEAR").builtinOptions.alignCorners = True

    _edited(path, both)
    with pytest.raises(ToolchainError, match="RESIZE_BILINEAR.*align_corners and half_pixel_centers together"):
        compile_model(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_reduce_max_with_requantization_is_refused(keras, tmp_path):
    make, shape, _ = LAYERS["global_max_2d"]
    path = convert(layer_model(keras, make(keras), shape), om.representative(shape, n=4), tmp_path / "m.tflite")

    def rescale(model):
        sg = te.subgraph(model)
        quant = sg.tensors[sg.operators[te.op_index(model, "REDUCE_MAX")].outputs[0]].quantization
        quant.scale = [2 * float(quant.scale[0])]

    _edited(path, rescale)
    with pytest.raises(ToolchainError, match="REDUCE_MAX.*input and output quantization differ"):
        compile_model(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind, name", [("REDUCE_MAX", "global_max_1d"), ("MEAN", "global_avg_1d"),
                                        ("RESIZE_NEAREST_NEIGHBOR", "upsample_nearest_2")])
def test_axes_or_size_not_constant_are_refused(keras, tmp_path, kind, name):
    """The second input made a runtime input of the model (its buffer emptied): the kernels need it at compile
    time."""
    make, shape, _ = LAYERS[name]
    path = convert(layer_model(keras, make(keras), shape), om.representative(shape, n=4), tmp_path / "v.tflite")

    def variable(model):
        op = te.operator(model, kind)
        te.tensor(model, op.inputs[1]).buffer = 0
        te.subgraph(model).inputs = [*te.subgraph(model).inputs, op.inputs[1]]
        model.signatureDefs = []

    _edited(path, variable)
    with pytest.raises(ToolchainError, match=rf"{kind}.*must be a constant int32 tensor"):
        compile_model(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_int8_sum_is_not_supported(keras, tmp_path):
    """LiteRT's BUILTIN_REF int8 SUM is not the quantized sum, so there is nothing to be bit-exact with."""
    from toolchain.tf import import_tf

    tf, _ = import_tf()
    inputs = keras.Input((4, 3), batch_size=1)
    model = keras.Model(inputs, keras.layers.Lambda(lambda v: tf.reduce_sum(v, axis=[1]))(inputs))
    path = convert(model, om.representative((4, 3), n=4), tmp_path / "s.tflite")
    with pytest.raises(ToolchainError, match="SUM has no kernel"):
        compile_model(path, tmp_path / "out")


def chain_model(keras):
    """RESIZE_BILINEAR -> REDUCE_MAX over H -> MEAN over the channels (not spatial: the portable kernel)."""
    from toolchain.tf import import_tf

    tf, _ = import_tf()
    inputs = keras.Input((6, 5, 4), batch_size=1, name="input")
    x = keras.layers.UpSampling2D(2, interpolation="bilinear", name="up")(inputs)
    x = keras.layers.Lambda(lambda v: tf.reduce_max(v, axis=[1]), name="max_h")(x)
    return keras.Model(inputs, keras.layers.Lambda(lambda v: tf.reduce_mean(v, axis=[2]), name="mean_c")(x))


@pytest.mark.emulator
@pytest.mark.skipif(not all(shutil.which(t) for t in ("cmake", "arm-none-eabi-gcc", "qemu-system-arm")),
                    reason="needs cmake, arm-none-eabi-gcc and qemu-system-arm")
def test_reduce_and_resize_on_the_cortex_m4(keras, tmp_path):
    from toolchain.boards import get_board
    from toolchain.pipeline import api

    tflite = convert(chain_model(keras), om.representative((6, 5, 4), n=8), tmp_path / "chain.tflite")
    assert _kinds(tflite) == ["RESIZE_BILINEAR", "REDUCE_MAX", "MEAN"]
    run = api.deploy(tflite, get_board("mps2-an386"), tmp_path / "run", samples=3, progress=lambda _: None)
    assert run.bit_exact
    assert [op for op, _ in run.run.layers] == ["RESIZE_BILINEAR", "REDUCE_MAX", "MEAN"]
