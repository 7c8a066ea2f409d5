"""Static-shape folding (issue 17, item 1): models with Keras's default unknown batch size compile, bit-exact with
LiteRT BUILTIN_REF; each pass folds what it must on a small Graph and leaves alone what it must not."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import op_models as om
from conftest import compile_and_check, convert
from toolchain.compiler.folding import drop_dead_shape_ops, fold_shapes, require_static, static_batch
from toolchain.compiler.frontend import load_tflite
from toolchain.compiler.ir import Graph, Op, Quant, Tensor
from toolchain.compiler.model_plan import ModelPlan
from toolchain.compiler.passes import fuse_space_to_batch, make_static
from toolchain.errors import ToolchainError

SHAPE_OPS = {"SHAPE", "STRIDED_SLICE", "PACK", "GATHER", "REDUCE_PROD", "CONCATENATION", "SPACE_TO_BATCH_ND",
             "BATCH_TO_SPACE_ND"}


def unknown_batch_model(keras, name, seed=0):
    """(model, input shape) built with keras.Input(shape): no batch size, as Keras builds models by default."""
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    seeds = iter(range(seed, seed + 8))

    def bias():  # one seeded initializer per layer (a shared one repeats its values)
        return keras.initializers.RandomUniform(-0.3, 0.3, seed=next(seeds))
    shapes = {"dense_3d": (5, 6), "reshape": (4, 6), "flatten": (6, 6, 2), "dilated_same": (11, 9, 3),
              "dilated_valid": (11, 9, 3), "depthwise_dilated": (10, 10, 4), "batchnorm": (5, 5, 4),
              "conv1d": (12, 3), "conv1d_dilated": (16, 3), "global_average": (8, 8, 3)}
    shape = shapes[name]
    inputs = keras.Input(shape)
    if name == "dense_3d":
        x = layers.Dense(4, bias_initializer=bias())(inputs)
    elif name == "reshape":
        x = layers.Dense(3, bias_initializer=bias())(layers.Reshape((6, 4))(inputs))
    elif name == "flatten":
        x = layers.Flatten()(layers.Conv2D(4, 3, bias_initializer=bias())(inputs))
        x = layers.Dense(5, bias_initializer=bias())(x)
    elif name in ("dilated_same", "dilated_valid"):
        x = layers.Conv2D(5, 3, dilation_rate=2, padding=name.split("_")[1], activation="relu",
                          bias_initializer=bias())(inputs)
    elif name == "depthwise_dilated":
        x = layers.DepthwiseConv2D(3, dilation_rate=(2, 3), padding="same", depth_multiplier=2,
                                   bias_initializer=bias())(inputs)
    elif name == "batchnorm":
        bn = layers.BatchNormalization()
        x = bn(inputs)
        rng = np.random.default_rng(seed)
        bn.set_weights([rng.uniform(0.5, 2.0, 4), rng.uniform(-0.5, 0.5, 4), rng.uniform(-0.2, 0.2, 4),
                        rng.uniform(0.5, 1.5, 4)])
    elif name == "conv1d":
        x = layers.Conv1D(4, 3, bias_initializer=bias())(inputs)
    elif name == "conv1d_dilated":
        x = layers.Conv1D(4, 3, dilation_rate=2, padding="same", bias_initializer=bias())(inputs)
    else:
        x = layers.GlobalAveragePooling2D()(layers.Conv2D(4, 3, bias_initializer=bias())(inputs))
    return keras.Model(inputs, x), shape


CASES = ["dense_3d", "reshape", "flatten", "dilated_same", "dilated_valid", "depthwise_dilated", "batchnorm",
         "conv1d", "conv1d_dilated", "global_average"]


@pytest.mark.parametrize("name", CASES)
def test_an_unknown_batch_model_compiles_bit_exact(keras, tmp_path, name):
    model, shape = unknown_batch_model(keras, name)
    assert model.input_shape[0] is None
    tflite = convert(model, om.representative(shape, n=16), tmp_path / f"{name}.tflite")
    g = load_tflite(tflite)
    assert 0 in g.tensors[g.inputs[0]].unknown
    result = compile_and_check(tflite, tmp_path / "out", samples=4)
    plan = ModelPlan.load(result.out_dir)
    assert not SHAPE_OPS & {layer.op for layer in plan.layers}
    assert plan.ops_in_model == len(g.ops)
    if name == "batchnorm":
        assert [op.kind for op in g.ops] == ["MUL", "ADD"]
    if name in ("dense_3d", "reshape", "dilated_same", "depthwise_dilated", "conv1d_dilated"):
        assert SHAPE_OPS & {op.kind for op in g.ops}, "the converter no longer emits what this test folds"


def test_dilated_convolution_keeps_its_dilation(keras, tmp_path):
    model, shape = unknown_batch_model(keras, "dilated_same")
    g = make_static(load_tflite(convert(model, om.representative(shape, n=8), tmp_path / "d.tflite")))
    assert [op.kind for op in g.ops] == ["CONV_2D", "ADD"]  # the converter adds the bias after the batch ops
    conv = g.ops[0]
    assert (conv.options["dilationHFactor"], conv.options["dilationWFactor"]) == (2, 2)
    assert conv.options["explicit_pad"] == (2, 2)  # SAME with a 3x3 window dilated 2: two rows and columns ahead


def test_tinyml_compile_takes_an_unknown_batch_model(keras, tmp_path):
    from toolchain.cli import main

    model, shape = unknown_batch_model(keras, "reshape")
    tflite = convert(model, om.representative(shape, n=8), tmp_path / "r.tflite")
    assert main(["compile", str(tflite), "-o", str(tmp_path / "out"), "--check", "2"]) == 0
    assert [layer.op for layer in ModelPlan.load(tmp_path / "out").layers] == ["FULLY_CONNECTED", "ADD"]


def test_an_unknown_dimension_other_than_the_batch_is_refused_by_name(keras, tmp_path):
    from toolchain.compiler import compile_model

    inputs = keras.Input((None, 4), name="frames")
    tflite = convert(keras.Model(inputs, keras.layers.Dense(3)(inputs)), om.representative((6, 4), n=4),
                     tmp_path / "t.tflite")
    with pytest.raises(ToolchainError, match=r"tensor 'serving_default_frames:0' has unknown dimension\(s\) \[1\]"):
        compile_model(tflite, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# Small graphs, one pass at a time.

Q = Quant((0.05,), (3,))


def graph(tensors: list[Tensor], ops: list[Op], inputs=(0,), outputs=None) -> Graph:
    outputs = outputs if outputs is not None else (ops[-1].outputs[0],)
    return Graph({t.id: t for t in tensors}, tuple(ops), tuple(inputs), tuple(outputs),
                 tuple(f"in{i}" for i in inputs), tuple(f"out{i}" for i in outputs))


def act(tid, shape, unknown=(), name=None, quant=Q):
    return Tensor(tid, name or f"t{tid}", tuple(shape), "int8", quant, unknown=tuple(unknown))


def const(tid, values, dtype="int32", quant=None):
    data = np.asarray(values, dtype=dtype)
    return Tensor(tid, f"c{tid}", data.shape, dtype, quant, data)


def shape_tensor(tid, shape):
    return Tensor(tid, f"s{tid}", tuple(shape), "int32")


def keras_reshape_graph():
    """x[?, 4, 6] -> SHAPE -> STRIDED_SLICE (batch, shrink) -> PACK(batch, 6, 4) -> RESHAPE -> y[?, 6, 4]."""
    tensors = [act(0, (1, 4, 6), (0,)), shape_tensor(1, (3,)), const(2, [0]), const(3, [1]), const(4, [1]),
               shape_tensor(5, ()), const(6, 6), const(7, 4), shape_tensor(8, (3,)), act(9, (1, 1, 1), (0, 1, 2))]
    ops = [Op("SHAPE", (0,), (1,), {"outType": 2}),
           Op("STRIDED_SLICE", (1, 2, 3, 4), (5,), {"shrinkAxisMask": 1}),
           Op("PACK", (5, 6, 7), (8,), {"axis": 0, "valuesCount": 3}),
           Op("RESHAPE", (0, 8), (9,))]
    return graph(tensors, ops)


def test_shape_arithmetic_folds_and_the_reshape_gets_its_static_shape():
    g = fold_shapes(static_batch(keras_reshape_graph()))
    assert [op.kind for op in g.ops] == ["RESHAPE"]
    np.testing.assert_array_equal(g.tensors[8].data, [1, 6, 4])
    assert g.tensors[8].dtype == "int32" and g.tensors[8].data.dtype == np.int32
    assert g.tensors[9].shape == (1, 6, 4) and not g.tensors[9].unknown
    assert require_static(g) is g


def test_a_shape_of_an_unresolved_tensor_is_left_and_the_kernel_op_refused():
    g = keras_reshape_graph()
    g = g.replace(tensors={**g.tensors, 0: act(0, (1, 1, 6), (0, 1), name="frames")})
    with pytest.raises(ToolchainError, match="'frames' has unknown dimension"):
        static_batch(g)
    folded = fold_shapes(g)  # not through static_batch: SHAPE sees an unknown axis and stays
    assert [op.kind for op in folded.ops] == ["SHAPE", "STRIDED_SLICE", "PACK", "RESHAPE"]
    with pytest.raises(ToolchainError, match="'frames' has unknown dimension"):
        require_static(folded)


def fold_one(kind, inputs: list[Tensor], out: Tensor, options=None) -> Graph:
    """The graph `x -> (kind over inputs) -> out`, folded; x is an unrelated int8 input."""
    op = Op(kind, tuple(t.id for t in inputs), (out.id,), options or {})
    reader = Op("RESHAPE", (out.id,), (99,))
    g = graph([act(0, (1, 2)), *inputs, out, Tensor(99, "r", out.shape, out.dtype)], [op, reader], outputs=(99,))
    return fold_shapes(g)


@pytest.mark.parametrize("kind, values, options, out_shape, want", [
    ("STRIDED_SLICE", [[[1, 2, 3], [4, 5, 6]], [0, 1], [0, 0], [1, 1]], {"beginMask": 1, "endMask": 3},
     (2, 2), [[2, 3], [5, 6]]),
    ("STRIDED_SLICE", [[7, 8, 9, 10], [-1], [0], [-2]], {"endMask": 1}, (2,), [10, 8]),
    ("STRIDED_SLICE", [[7, 8, 9, 10], [1], [2], [1]], {"offset": True}, (2,), [8, 9]),
    ("CONCATENATION", [[1, 2], [3]], {"axis": 0, "fusedActivationFunction": "NONE"}, (3,), [1, 2, 3]),
    ("GATHER", [[5, 6, 7], [2, 0]], {"axis": 0}, (2,), [7, 5]),
    ("REDUCE_PROD", [[2, 3, 4], [0]], {"keepDims": False}, (), 24),
    ("SLICE", [[4, 5, 6, 7], [1], [-1]], {}, (3,), [5, 6, 7]),
    ("ADD", [[1, 2], [10]], {"fusedActivationFunction": "NONE"}, (2,), [11, 12]),
    ("SUB", [[1, 2], [10]], {"fusedActivationFunction": "NONE"}, (2,), [-9, -8]),
    ("MUL", [[3, 4], [-2]], {"fusedActivationFunction": "NONE"}, (2,), [-6, -8]),
    ("FLOOR_DIV", [[-7, 7], [2]], {}, (2,), [-4, 3]),
    ("EXPAND_DIMS", [[1, 2], [0]], {}, (1, 2), [[1, 2]]),
    ("SQUEEZE", [[[1, 2]]], {"squeezeDims": [0]}, (2,), [1, 2]),
    ("CAST", [np.array([3, 4], np.int64)], {}, (2,), [3, 4]),
])
def test_each_shape_op_folds_to_numpy_values(kind, values, options, out_shape, want):
    inputs = [const(10 + k, v, dtype=np.asarray(v).dtype if isinstance(v, np.ndarray) else "int32")
              for k, v in enumerate(values)]
    g = fold_one(kind, inputs, shape_tensor(20, out_shape), options)
    assert [op.kind for op in g.ops] == ["RESHAPE"]
    np.testing.assert_array_equal(g.tensors[20].data, want)


def test_pack_and_unpack_fold():
    a, b = const(10, [1, 2]), const(11, [3, 4])
    g = fold_one("PACK", [a, b], shape_tensor(20, (2, 2)), {"axis": 1, "valuesCount": 2})
    np.testing.assert_array_equal(g.tensors[20].data, [[1, 3], [2, 4]])
    op = Op("UNPACK", (10,), (20, 21), {"num": 2, "axis": 0})
    g = graph([act(0, (1, 2)), a, shape_tensor(20, ()), shape_tensor(21, ()), Tensor(99, "r", (), "int32")],
              [op, Op("ADD", (20, 21), (99,), {"fusedActivationFunction": "NONE"})], outputs=(99,))
    g = fold_shapes(g)
    assert (int(g.tensors[20].data), int(g.tensors[21].data)) == (1, 2)
    assert [op.kind for op in g.ops] == ["ADD"]  # a graph output is never folded away


@pytest.mark.parametrize("kind, values, options, out_shape", [
    ("GATHER", [[5, 6, 7], [3]], {"axis": 0}, (1,)),  # index out of range: LiteRT refuses it at run time
    ("FLOOR_DIV", [[4], [0]], {}, (1,)),
    ("STRIDED_SLICE", [[1, 2], [0], [1], [1]], {"ellipsisMask": 1}, (1,)),
    ("ADD", [[1], [2]], {"fusedActivationFunction": "RELU"}, (1,)),
    ("CONCATENATION", [[1, 2], [3]], {"axis": 0}, (4,)),  # the model states another shape than the values have
    ("GATHER", [np.zeros((2, 1 << 12)), np.zeros(1 << 12)], {"axis": 0}, (1 << 12, 1 << 12)),  # 16M results
    ("MUL", [np.ones((1 << 12, 1)), np.ones((1, 1 << 12))], {}, (1 << 12, 1 << 12)),
])
def test_an_ill_defined_shape_op_is_left_for_the_usual_refusal(kind, values, options, out_shape):
    """Also what would make NumPy allocate more than a shape could need."""
    g = fold_one(kind, [const(10 + k, v) for k, v in enumerate(values)], shape_tensor(20, out_shape), options)
    assert [op.kind for op in g.ops] == [kind, "RESHAPE"]
    assert not g.tensors[20].is_const


def test_fill_folds_an_int8_zero_state_only_with_the_values_quantization():
    dims, zero = const(10, [1, 3]), const(11, 3, dtype="int8", quant=Q)
    g = fold_one("FILL", [dims, zero], act(20, (1, 3), (0,)))
    np.testing.assert_array_equal(g.tensors[20].data, [[3, 3, 3]])
    assert g.tensors[20].data.dtype == np.int8 and not g.tensors[20].unknown
    other = const(11, 3, dtype="int8", quant=Quant((0.1,), (3,)))
    assert [op.kind for op in fold_one("FILL", [dims, other], act(20, (1, 3))).ops] == ["FILL", "RESHAPE"]
    huge = const(10, [1 << 12, 1 << 12])
    assert [op.kind for op in fold_one("FILL", [huge, zero], act(20, (1, 1), (0, 1))).ops] == ["FILL", "RESHAPE"]


def test_shape_ops_nobody_reads_disappear_and_others_stay():
    tensors = [act(0, (1, 4)), shape_tensor(1, (2,)), const(2, [0]), shape_tensor(3, (1,)), act(4, (1, 4))]
    ops = [Op("SHAPE", (0,), (1,)), Op("GATHER", (1, 2), (3,), {"axis": 0}), Op("RELU", (0,), (4,))]
    g = drop_dead_shape_ops(graph(tensors, ops, outputs=(4,)))
    assert [op.kind for op in g.ops] == ["RELU"]
    kept = graph(tensors, ops, outputs=(3, 4))
    assert drop_dead_shape_ops(kept).ops == kept.ops


def dilated_pattern(crops=((0, 1), (0, 1)), stride=1, extra_reader=False, block_const=True, rows=None):
    """x[1,9,9,2] -> SPACE_TO_BATCH_ND(block 2, pads 2,3) -> CONV_2D 3x3 VALID -> BATCH_TO_SPACE_ND(crops)."""
    wq = Quant((0.02,), (0,))
    block = const(1, [2, 2]) if block_const else shape_tensor(1, (2,))
    tensors = [act(0, (1, 9, 9, 2), (0,)), block, const(2, [[2, 3], [2, 3]]), act(3, (1, 7, 7, 2), (0,)),
               Tensor(4, "w", (3, 3, 3, 2), "int8", wq, np.ones((3, 3, 3, 2), np.int8)), act(5, (1, 5, 5, 3), (0,)),
               const(6, crops), act(7, (1, rows or 10 - sum(crops[0]), 10 - sum(crops[1]), 3), (0,)),
               act(8, (1, 7, 7, 2))]
    ops = [Op("SPACE_TO_BATCH_ND", (0, 1, 2), (3,)),
           Op("CONV_2D", (3, 4), (5,), {"padding": "VALID", "strideH": stride, "strideW": stride}),
           Op("BATCH_TO_SPACE_ND", (5, 1, 6), (7,))]
    if extra_reader:
        ops.append(Op("RELU", (3,), (8,)))
    return graph(tensors, ops, outputs=(7, 8) if extra_reader else (7,))


def test_space_to_batch_around_a_convolution_becomes_a_dilated_convolution():
    g = make_static(dilated_pattern())
    (conv,) = g.ops
    assert conv.inputs[:2] == (0, 4) and conv.outputs == (7,)
    assert (conv.options["dilationHFactor"], conv.options["dilationWFactor"], conv.options["explicit_pad"]) == \
        (2, 2, (2, 2))
    assert g.tensors[7].shape == (1, 9, 9, 3) and not g.tensors[7].unknown


@pytest.mark.parametrize("change", [
    {"crops": ((3, 0), (0, 1))},  # cropping more than was padded ahead is no padding a kernel can take
    {"rows": 8},  # the stored output shape disagrees with the arithmetic
    {"stride": 2},
    {"extra_reader": True},  # someone else reads the batched tensor
    {"block_const": False},
])
def test_space_to_batch_is_left_when_not_provably_a_dilated_convolution(change):
    g = static_batch(dilated_pattern(**change))
    fused = fuse_space_to_batch(g)
    assert [op.kind for op in fused.ops] == [op.kind for op in g.ops]


@pytest.mark.emulator
@pytest.mark.skipif(not all(shutil.which(t) for t in ("cmake", "arm-none-eabi-gcc", "qemu-system-arm")),
                    reason="needs cmake, arm-none-eabi-gcc and qemu-system-arm")
def test_an_unknown_batch_model_on_the_cortex_m4(keras, tmp_path):
    from toolchain.boards import get_board
    from toolchain.pipeline import api

    keras.utils.set_random_seed(0)
    inputs = keras.Input((10, 10, 3))
    x = keras.layers.Conv2D(6, 3, dilation_rate=2, padding="same", activation="relu")(inputs)
    x = keras.layers.Reshape((20, 30))(x)
    model = keras.Model(inputs, keras.layers.Dense(4)(x))
    tflite = convert(model, om.representative((10, 10, 3), n=8), tmp_path / "m.tflite")
    assert {"SPACE_TO_BATCH_ND", "SHAPE"} <= {op.kind for op in load_tflite(tflite).ops}
    run = api.deploy(tflite, get_board("mps2-an386"), tmp_path / "run", samples=2, progress=lambda _: None)
    layers = [op for op, _ in run.run.layers]
    assert run.bit_exact and layers[0] == "CONV_2D" and "FULLY_CONNECTED" in layers and not SHAPE_OPS & set(layers)


def dilated_1d_pattern(view_back=True):
    """Conv1D: x[1,16,3] -> SPACE_TO_BATCH_ND(2, pads 2,2) -> EXPAND_DIMS -> CONV_2D 1x3 -> RESHAPE -> B2S."""
    wq = Quant((0.02,), (0,))
    tensors = [act(0, (1, 16, 3), (0,)), const(1, [2]), const(2, [[2, 2]]), act(3, (1, 10, 3), (0,)), const(4, -3),
               act(5, (1, 1, 10, 3), (0,)), Tensor(6, "w", (4, 1, 3, 3), "int8", wq, np.ones((4, 1, 3, 3), np.int8)),
               act(7, (1, 1, 8, 4), (0,)), const(8, [-1, 8, 4]), act(9, (1, 8, 4), (0,)), const(10, [[0, 0]]),
               act(11, (1, 16, 4), (0,))]
    ops = [Op("SPACE_TO_BATCH_ND", (0, 1, 2), (3,)), Op("EXPAND_DIMS", (3, 4), (5,)),
           Op("CONV_2D", (5, 6), (7,), {"padding": "VALID"}), Op("RESHAPE", (7, 8), (9,)),
           Op("BATCH_TO_SPACE_ND", (9, 1, 10), (11,))]
    if not view_back:
        ops = [ops[0], ops[1], ops[2].replace(outputs=(9,)), ops[4]]
    return graph(tensors, ops)


def test_a_dilated_conv1d_becomes_one_dilated_convolution_between_its_views():
    g = make_static(dilated_1d_pattern())
    assert [op.kind for op in g.ops] == ["EXPAND_DIMS", "CONV_2D", "RESHAPE"]
    expand, conv, back = g.ops
    assert expand.inputs == (0, 4) and g.tensors[5].shape == (1, 1, 16, 3)
    assert (conv.options["dilationHFactor"], conv.options["dilationWFactor"], conv.options["explicit_pad"]) == \
        (1, 2, (0, 2))
    assert g.tensors[7].shape == (1, 1, 16, 4) and back.inputs == (7,) and back.outputs == (11,)
    left = fuse_space_to_batch(static_batch(dilated_1d_pattern(view_back=False)))  # 3-D around a 4-D conv
    assert [op.kind for op in left.ops] == ["SPACE_TO_BATCH_ND", "EXPAND_DIMS", "CONV_2D", "BATCH_TO_SPACE_ND"]
