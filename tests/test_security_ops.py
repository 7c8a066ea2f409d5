"""Hostile models against the ops and passes of issue 17 (TRANSPOSE_CONV, reductions, resize, split/pack/gather,
static-shape folding, the SPACE_TO_BATCH fusion, the ONNX importer): each one ends in one clear error or a correct
compile, in bounded time and memory. Each test reproduces a finding of the review (tests/fuzz/corpus keeps the
.tflite ones too)."""
from __future__ import annotations

import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import tflite_edit as te
from toolchain.compiler import compile_model
from toolchain.errors import ToolchainError

sys.path.insert(0, str(Path(__file__).parent / "fuzz"))

from harness import compile_one  # noqa: E402
from seeds import make_seeds  # noqa: E402

INT32, INT64, FLOAT32 = 2, 4, 0  # schema.TensorType


@pytest.fixture(scope="module")
def seed(tmp_path_factory, keras):
    paths = make_seeds(tmp_path_factory.mktemp("seeds"), ["mean", "transpose_conv", "unknown_batch"])
    return {p.stem: p.read_bytes() for p in paths}


def add_constant(model, values: np.ndarray, tensor_type: int) -> int:
    """A new constant tensor holding `values` (its own buffer); returns its id."""
    from ai_edge_litert import schema_py_generated as schema

    buffer = schema.BufferT()
    buffer.data = np.frombuffer(values.tobytes(), np.uint8)
    model.buffers.append(buffer)
    t = schema.TensorT()
    t.shape, t.type, t.buffer, t.name = np.array(values.shape, np.int32), tensor_type, len(model.buffers) - 1, b"c"
    te.subgraph(model).tensors.append(t)
    return len(te.subgraph(model).tensors) - 1


def set_shape(t, shape) -> None:
    t.shape = np.array(shape, np.int32)
    if t.shapeSignature is not None:
        t.shapeSignature = t.shape.copy()


def refusal(data: bytes) -> str:
    outcome = compile_one(data)  # raises on anything but a result or one ToolchainError
    assert outcome.kind == "refused", outcome
    return outcome.detail


# ---- sizes the kernels' int32 arithmetic cannot hold ---------------------------------------------------

def test_a_tensor_over_2_gib_is_refused_before_compiling(seed, tmp_path):
    """A MEAN's input (and the conv before it) of 1 x 65536 x 65536 x 8: 32 GiB, which tm_dims_size and every row
    offset would compute in int32. It used to compile."""
    def huge(model):
        for tid in (0, 4):  # the graph input and the conv's output (the MEAN's input)
            t = te.tensor(model, tid)
            set_shape(t, [1, 65536, 65536, t.shape[3]])

    data = te.edit(seed["mean"], huge)
    with pytest.raises(ToolchainError, match=r"holds 34359738368 bytes, more than 2147483647"):
        compile_model(_write(tmp_path, data), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_activations_over_2_gib_in_all_are_refused(seed):
    """Each tensor below 2 GiB, together above: the arena is one array indexed in int32."""
    def large(model):
        for tid in (0, 4):
            t = te.tensor(model, tid)
            set_shape(t, [1, 16384, 12288, t.shape[3]])  # 0.75 GiB and 1.5 GiB

    assert "activations take" in refusal(te.edit(seed["mean"], large))


# ---- compile time bounded by the data, not by sizes a model states ------------------------------------

def test_a_tall_transpose_conv_filter_compiles_in_bounded_time(seed):
    """MACs were counted by a loop over input rows x filter taps: a 65536-row input and a 65536-tap filter (786 KB
    of weights) took ten minutes in Python; the count is now a loop over the taps only."""
    taps, rows = 65536, 65536

    def tall(model):
        sg = te.subgraph(model)
        sg.operators = sg.operators[:1]  # the first TRANSPOSE_CONV alone, its output the graph's
        (shape_id, weights_id, input_id), out_id = sg.operators[0].inputs[:3], sg.operators[0].outputs[0]
        sg.outputs = np.array([out_id], np.int32)
        model.signatureDefs[0].outputs[0].tensorIndex = out_id
        w = te.tensor(model, weights_id)
        set_shape(w, [4, taps, 1, 3])
        model.buffers[w.buffer].data = np.ones(4 * taps * 3, np.uint8)
        set_shape(te.tensor(model, input_id), [1, rows, 1, 3])
        set_shape(te.tensor(model, out_id), [1, 2 * rows, 2, 4])  # SAME, stride 2
        model.buffers[te.tensor(model, shape_id).buffer].data = np.frombuffer(
            np.array([1, 2 * rows, 2, 4], np.int32).tobytes(), np.uint8)

    start = time.monotonic()
    outcome = compile_one(te.edit(seed["transpose_conv"], tall))
    assert outcome.kind == "compiled", outcome
    assert time.monotonic() - start < 30


def test_a_transpose_conv_stride_litert_refuses_is_refused(seed):
    """Stride 2^31 - 1 on a 1x1 input (a 3x3 VALID output fits it): it compiled, and the kernel's tap loop
    `ky += stride` overflows int32; LiteRT's Prepare requires strides <= INT16_MAX."""
    def huge_stride(model):
        sg = te.subgraph(model)
        sg.operators = sg.operators[:1]
        (shape_id, _, input_id), out_id = sg.operators[0].inputs[:3], sg.operators[0].outputs[0]
        sg.outputs = np.array([out_id], np.int32)
        model.signatureDefs[0].outputs[0].tensorIndex = out_id
        options = sg.operators[0].builtinOptions
        options.strideH = options.strideW = 2**31 - 1
        options.padding = 1  # VALID
        set_shape(te.tensor(model, input_id), [1, 1, 1, 3])
        set_shape(te.tensor(model, out_id), [1, 3, 3, 4])
        model.buffers[te.tensor(model, shape_id).buffer].data = np.frombuffer(
            np.array([1, 3, 3, 4], np.int32).tobytes(), np.uint8)

    assert "LiteRT requires them at most 32767" in refusal(te.edit(seed["transpose_conv"], huge_stride))


# ---- static-shape folding and the dilated-convolution fusion ------------------------------------------

def test_a_reshape_whose_int64_shape_product_wraps_is_refused(seed):
    """RESHAPE to [-1, 2^62, 4]: NumPy's int64 product of the known sizes wrapped to 0 and the -1 was resolved by a
    division by zero (a ZeroDivisionError traceback)."""
    def wrapping(model):
        reshape = te.operator(model, "RESHAPE")
        shape = add_constant(model, np.array([-1, 2**62, 4], np.int64), INT64)
        reshape.inputs = np.array([reshape.inputs[0], shape], np.int32)

    assert refusal(te.edit(seed["unknown_batch"], wrapping))


def test_a_pack_listing_one_constant_thousands_of_times_is_not_folded_in_memory(seed):
    """Each input was small enough to fold, but PACK may list one constant 4000 times: NumPy stacked 65 MB."""
    def bomb(model):
        pack = te.operator(model, "PACK", 1)
        big = add_constant(model, np.arange(4097, dtype=np.int32), INT32)
        pack.inputs = np.full(4000, big, np.int32)
        pack.builtinOptions.valuesCount = 4000

    data = te.edit(seed["unknown_batch"], bomb)
    tracemalloc.start()
    try:
        assert refusal(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 * 2**20, f"folding allocated {peak / 2**20:.0f} MiB"


def test_a_float_block_shape_is_not_fused_into_a_dilated_convolution(seed):
    """SPACE_TO_BATCH_ND's block shape as float32 NaNs: int(nan) raised a ValueError traceback."""
    def nan_block(model):
        block = te.tensor(model, te.operator(model, "SPACE_TO_BATCH_ND").inputs[1])
        block.type = FLOAT32
        model.buffers[block.buffer].data = np.frombuffer(np.full(2, np.nan, np.float32).tobytes(), np.uint8)

    assert refusal(te.edit(seed["unknown_batch"], nan_block))  # the batch ops stay, and so does an unknown size


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "model.tflite"
    path.write_bytes(data)
    return path


# ---- ONNX ----------------------------------------------------------------------------------------------

def onnx_model(extra_nodes=(), extra_initializers=(), weights=None, input_shape=(1, 3, 4, 4)):
    """x [1, 3, 4, 4] -> Conv(w, 2 filters of 3x3, SAME) -> y, with extra nodes and initializers before it."""
    from onnx import TensorProto, helper, numpy_helper

    w = weights if weights is not None else numpy_helper.from_array(np.ones((2, 3, 3, 3), np.float32), "w")
    nodes = [*extra_nodes, helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])],
                              [w, *extra_initializers])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def save_onnx(tmp_path: Path, model) -> Path:
    (tmp_path / "model").mkdir(exist_ok=True)
    path = tmp_path / "model" / "m.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def prepared(tmp_path: Path, model):
    from toolchain.export.onnx_import.load import load_onnx, prepare

    return prepare(load_onnx(save_onnx(tmp_path, model)).graph)


def test_an_onnx_concat_of_one_constant_thousands_of_times_is_refused_before_allocating(tmp_path):
    """Concat of a 65536-value initializer listed 2000 times: 0.5 GB of float32 folded at import."""
    from onnx import helper, numpy_helper

    big = numpy_helper.from_array(np.zeros(65536, np.float32), "big")
    model = onnx_model([helper.make_node("Concat", ["big"] * 2000, ["c"], axis=0)], [big])
    tracemalloc.start()
    try:
        with pytest.raises(ToolchainError, match=r"ONNX node Concat: concatenating constants into 131072000 elements"):
            prepared(tmp_path, model)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20


@pytest.mark.parametrize("node, message", [
    (("Transpose", ["w0"], ["t"], {"perm": [5, 0]}), "Transpose: cannot evaluate it on its constant inputs"),
    (("Unsqueeze", ["w0", "axes"], ["u"], {}), "Unsqueeze: cannot evaluate it on its constant inputs"),
    (("Concat", ["w0", "axes"], ["c"], {"axis": 3}), "Concat: cannot evaluate it on its constant inputs"),
])
def test_onnx_constants_numpy_refuses_are_one_error(tmp_path, node, message):
    """A bad perm, 100 new axes, an axis out of range: NumPy's ValueError / AxisError came out as a traceback."""
    from onnx import helper, numpy_helper

    op_type, inputs, outputs, attrs = node
    constants = [numpy_helper.from_array(np.ones(2, np.float32), "w0"),
                 numpy_helper.from_array(np.arange(100, dtype=np.int64), "axes")]
    with pytest.raises(ToolchainError, match=message) as caught:
        prepared(tmp_path, onnx_model([helper.make_node(op_type, inputs, outputs, **attrs)], constants))
    assert "\n" not in str(caught.value).split("\n  hint")[0]


def test_an_onnx_input_of_absurd_size_is_refused(tmp_path, keras):
    from toolchain.export.onnx_import import load_onnx, onnx_to_keras

    model = load_onnx(save_onnx(tmp_path, onnx_model(input_shape=(1, 3, 2**40, 2**40))))
    with pytest.raises(ToolchainError, match=r"has \d+ elements per sample, more than 67108864"):
        onnx_to_keras(model)


def test_an_onnx_chain_of_resizes_that_outgrows_memory_is_refused_before_onnxruntime_runs(tmp_path, keras):
    """Four Resize x64 (each allowed) from 4x4: 16M x 16M values per channel, which onnxruntime would have been
    asked to compute on the calibration data."""
    from onnx import TensorProto, helper, numpy_helper

    from toolchain.export.onnx_import import import_onnx

    scales = numpy_helper.from_array(np.array([1, 1, 64, 64], np.float32), "scales")
    nodes = [helper.make_node("Resize", [f"r{k}", "", "scales"], [f"r{k + 1}"], mode="nearest") for k in range(4)]
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["r0"]), *nodes], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("r4", TensorProto.FLOAT, None)], [scales])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ToolchainError, match=r"ONNX node Resize '': its output \[16384, 16384, 3\] has 805306368 "):
        import_onnx(model, np.zeros((2, 3, 4, 4), np.float32))


@pytest.mark.parametrize("case", ["raw size", "no data", "cycle"])
def test_malformed_onnx_graphs_are_refused_on_loading(tmp_path, case):
    from onnx import TensorProto, helper, numpy_helper

    from toolchain.export.onnx_import import load_onnx

    w = numpy_helper.from_array(np.ones((2, 3, 3, 3), np.float32), "w")
    nodes = []
    if case == "raw size":
        w.raw_data = w.raw_data[:20]
    elif case == "no data":  # 2^20 x 2^20 x 3 x 3 declared, nothing stored
        w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2**20, 2**20, 3, 3])
    else:
        nodes = [helper.make_node("Relu", ["b"], ["a"]), helper.make_node("Relu", ["a"], ["b"])]
    with pytest.raises(ToolchainError, match="cannot read ONNX model"):
        load_onnx(save_onnx(tmp_path, onnx_model(nodes, weights=w)))


def external(location: str, **entries):
    """The test model with its weights in external data at `location` (and `offset`/`length` entries)."""
    from onnx import TensorProto, numpy_helper

    w = numpy_helper.from_array(np.ones((2, 3, 3, 3), np.float32), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in {"location": location, **entries}.items():
        entry = w.external_data.add()
        entry.key, entry.value = key, str(value)
    return onnx_model(weights=w)


@pytest.mark.parametrize("location", ["..\\secret.data", "C:\\secret.data", "sub", "zero.data", "fifo.data",
                                      "w\0.data", "w" * 5000],
                         ids=["backslash-parent", "drive", "directory", "dev-zero", "fifo", "nul", "too-long"])
def test_external_data_that_is_no_regular_file_in_the_directory_is_refused(tmp_path, location):
    """Windows-style escapes, a directory, a symlink to /dev/zero (which never ends), a FIFO (reading it blocks
    for ever: it used to hang the import), and names the OS refuses (a NUL byte, 5000 characters: tracebacks)."""
    import os
    import threading

    from toolchain.export.onnx_import import load_onnx

    path = save_onnx(tmp_path, external(location))
    (path.parent / "sub").mkdir()
    os.symlink("/dev/zero", path.parent / "zero.data")
    os.mkfifo(path.parent / "fifo.data")
    outcome = []

    def load():
        try:
            load_onnx(path)
        except ToolchainError as exc:
            outcome.append(str(exc))

    worker = threading.Thread(target=load, daemon=True)  # a blocked open() cannot be interrupted: let it hang here
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "loading the external data blocked"
    assert outcome and "is not a file inside the model's directory" in outcome[0]


@pytest.mark.parametrize("entries, message", [
    ({"offset": 2**62}, "offset"), ({"offset": -5}, "offset"), ({"length": 2**62}, "length"),
    ({"length": 8}, "too small"), ({"offset": "abc"}, "invalid literal"),
])
def test_external_data_offsets_and_lengths_out_of_range_are_refused(tmp_path, entries, message):
    from toolchain.export.onnx_import import load_onnx

    path = save_onnx(tmp_path, external("w.data", **entries))
    (path.parent / "w.data").write_bytes(np.ones(54, np.float32).tobytes())
    with pytest.raises(ToolchainError, match=f"cannot read ONNX model .*{message}"):
        load_onnx(path)


# ---- tinyml export's .keras reader ---------------------------------------------------------------------

@pytest.mark.parametrize("config, message", [
    (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
    (b" " * (65 * 2**20), "unpacks to 68157440 bytes"),
])
def test_a_keras_archive_whose_config_is_a_bomb_is_refused_before_loading(tmp_path, keras, config, message):
    """config.json is read (as JSON only) to find Lambda layers before Keras sees the file: 200,000 nested lists
    raised a RecursionError traceback, and a 65 MB config (64 KB zipped) was read whole into memory."""
    import zipfile

    from toolchain.compress.graph import load_keras

    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", config)
    assert path.stat().st_size < 2**20
    tracemalloc.start()
    try:
        with pytest.raises(ToolchainError, match=message):
            load_keras(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20


@pytest.mark.parametrize("where", ["model", "layer"])
def test_a_keras_archive_naming_another_python_module_is_refused_before_importing_it(tmp_path, keras, monkeypatch,
                                                                                     where):
    """tf_keras imports whatever module a config entry names (safe_mode or not) and calls from_config on the class
    it finds there: a .keras whose model or layer named module 'planted' ran that module's code (and crashed with
    an AttributeError traceback)."""
    import json
    import zipfile

    from toolchain.compress.graph import load_keras, save_keras

    (tmp_path / "planted.py").write_text(f"open({str(tmp_path / 'RAN')!r}, 'w').close()\n"
                                         "class X:\n    from_config = classmethod(lambda cls, config: None)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    inputs = keras.Input((4,))
    honest = save_keras(keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs))),
                        tmp_path / "honest.keras")
    with zipfile.ZipFile(honest) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    entry = config if where == "model" else config["config"]["layers"][1]
    entry.update(module="planted", class_name="X", registered_name=None)
    path = tmp_path / "planted.keras"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, json.dumps(config) if name == "config.json" else data)
    with pytest.raises(ToolchainError, match="uses custom classes X"):
        load_keras(path)
    assert not (tmp_path / "RAN").exists()
    assert load_keras(honest).count_params() == 10
