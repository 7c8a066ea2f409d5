"""The int8 unary activations compiled to a lookup table (LOGISTIC, TANH, ELU, HARD_SWISH, LEAKY_RELU), and PRELU.

For each op and several calibration ranges (so input scale and zero point, and with them the tables, differ):
the compile-time table equals LiteRT BUILTIN_REF's output on a tensor holding every int8 value, all 256 of them;
then the compiled C, run on the host, is bit-exact with LiteRT on that tensor and on random ones.
"""
from __future__ import annotations

import numpy as np
import pytest

import op_models as om
import tflite_edit as te
from conftest import convert, have
from toolchain.compiler import compile_model
from toolchain.compiler.hostrun import HostModel
from toolchain.compiler.frontend import load_tflite
from toolchain.compiler.ops import lut
from toolchain.verify.check import check_against_reference
from toolchain.verify.reference import ReferenceModel

EVERY_INT8 = np.arange(-128, 128, dtype=np.int8)
RANGES = {"sym1": (-1.0, 1.0), "neg6_pos2": (-6.0, 2.0), "pos5": (-0.4, 5.0)}  # calibration data ranges
KINDS = ["sigmoid", "tanh", "hard_swish", "leaky_relu", "leaky_relu_small", "elu"]


def _representative(shape, lo: float, hi: float) -> np.ndarray:
    return (lo + (hi - lo) * np.random.default_rng(0).uniform(0.0, 1.0, (32, *shape))).astype(np.float32)


def _as_elu(path, out_scale: float, out_zero_point: int) -> None:
    """The converter leaves ELU in float, so an int8 ELU is the int8 TANH model with its operator code changed to
    ELU and an output quantization that holds ELU's range."""
    def change(model):
        sg = te.subgraph(model)
        op = sg.operators[te.op_index(model, "TANH")]
        code = model.operatorCodes[op.opcodeIndex]
        code.builtinCode = code.deprecatedBuiltinCode = te.schema.BuiltinOperator.ELU
        code.version = 1  # what LiteRT's reference resolver registers for ELU
        out = sg.tensors[op.outputs[0]]
        out.quantization.scale, out.quantization.zeroPoint = [out_scale], [out_zero_point]

    path.write_bytes(te.edit(path.read_bytes(), change))


def one_op_model(kind: str, lo: float, hi: float, path):
    shape = (16, 16)  # 256 elements: the exhaustive input is one tensor
    keras_kind = {"leaky_relu_small": "leaky_relu", "elu": "tanh"}.get(kind, kind)
    alpha = {"leaky_relu": 0.3, "leaky_relu_small": 0.01}.get(kind, 0.3)
    model = om.activation(keras_kind, input_shape=shape, alpha=alpha)
    convert(model, _representative(shape, lo, hi), path)
    if kind == "elu":
        _as_elu(path, out_scale=(hi + 1.0) / 255.0, out_zero_point=-128 + round(1.0 / ((hi + 1.0) / 255.0)))
    return path


def litert_outputs(tflite, kind: str, x: np.ndarray) -> np.ndarray:
    """LiteRT's output for `x`. BUILTIN_REF registers no ELU; LiteRT's only int8 ELU is the builtin one, whose
    Prepare/Eval do not depend on the kernel type (the same LUTPopulate table), run here without delegates."""
    if kind != "elu":
        return ReferenceModel(tflite).run([x])[0]
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_path=str(tflite),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"]).copy()


def check_c(tflite, out_dir, kind: str) -> None:
    """The compiled C on the host against LiteRT: every int8 value, then random tensors."""
    rng = np.random.default_rng(1)
    inputs = [EVERY_INT8.reshape(1, 16, 16)] + [rng.integers(-128, 128, (1, 16, 16), dtype=np.int8) for _ in range(3)]
    if kind != "elu":
        report = check_against_reference(tflite, out_dir, inputs=[[x] for x in inputs])
        assert report.ok, report.summary()
        return
    host = HostModel(out_dir)
    for x in inputs:
        ours = host.run([x])[0][0].reshape(-1)
        want = litert_outputs(tflite, kind, x).reshape(-1)
        assert np.array_equal(ours, want), f"{np.count_nonzero(ours != want)} of {want.size} differ"


def mismatches(ours: np.ndarray, want: np.ndarray) -> str:
    bad = np.flatnonzero(ours != want)
    return ", ".join(f"x={EVERY_INT8[i]}: ours {ours[i]} LiteRT {want[i]}" for i in bad[:8]) + \
        (f" ... ({len(bad)} of {len(want)})" if len(bad) > 8 else f" ({len(bad)} of {len(want)})")


@pytest.mark.parametrize("calibration", sorted(RANGES))
@pytest.mark.parametrize("kind", KINDS)
def test_table_is_litert_on_all_256_inputs_and_the_c_is_bit_exact(kind, calibration, tmp_path, keras):
    tflite = one_op_model(kind, *RANGES[calibration], tmp_path / f"{kind}.tflite")
    g = load_tflite(tflite)
    (op,) = g.ops
    assert op.kind == {"sigmoid": "LOGISTIC", "tanh": "TANH", "hard_swish": "HARD_SWISH", "elu": "ELU"}.get(
        kind, "LEAKY_RELU")
    table = lut.table(op, g)
    want = litert_outputs(tflite, kind, EVERY_INT8.reshape(1, 16, 16)).reshape(-1)
    assert np.array_equal(table, want), mismatches(table, want)
    assert len(set(want.tolist())) > 8, "degenerate table: the calibration range should exercise the op"

    if not have("gcc"):
        pytest.skip("gcc not found: the table is proven, the C is not run")
    result = compile_model(tflite, tmp_path / "out")
    check_c(tflite, tmp_path / "out", kind)
    assert [layer.op for layer in result.plan.layers] == [op.kind]
    assert "tm_lut_s8(" in (tmp_path / "out" / "model.c").read_text()


def test_identical_tables_are_emitted_once(tmp_path, keras):
    """Two TANH layers with the same quantization share one 256-byte table."""
    tflite = one_op_model("tanh", -1.0, 1.0, tmp_path / "tanh.tflite")

    def duplicate(model):
        sg = te.subgraph(model)
        first = sg.operators[0]
        second = te.schema.OperatorT()
        second.opcodeIndex, second.inputs, second.outputs = first.opcodeIndex, [first.outputs[0]], [len(sg.tensors)]
        out = te.unpack(tflite.read_bytes()).subgraphs[0].tensors[first.outputs[0]]
        out.name = b"tanh_again"
        out.quantization = sg.tensors[first.inputs[0]].quantization  # the input's: the same table again
        sg.tensors.append(out)
        first_out = sg.tensors[first.outputs[0]]
        first_out.quantization = sg.tensors[first.inputs[0]].quantization
        sg.operators.append(second)
        sg.outputs = [len(sg.tensors) - 1]
        for sig in model.signatureDefs or []:
            sig.outputs[0].tensorIndex = len(sg.tensors) - 1

    tflite.write_bytes(te.edit(tflite.read_bytes(), duplicate))
    compile_model(tflite, tmp_path / "out")
    model_c = (tmp_path / "out" / "model.c").read_text()
    assert model_c.count("tm_lut_s8(") == 2 and model_c.count("lookup table") == 1
    report = check_against_reference(tflite, tmp_path / "out", inputs=[[EVERY_INT8.reshape(1, 16, 16)]])
    assert report.ok, report.summary()


PRELU_CASES = {  # input shape, shared axes (None: one alpha per element)
    "per_channel_every_value": ((256, 8), [1]),
    "per_channel_nhwc": ((4, 6, 8), [1, 2]),
    "full_alpha": ((4, 6, 8), None),
}


@pytest.mark.parametrize("calibration", ["sym1", "neg6_pos2"])
@pytest.mark.parametrize("case", sorted(PRELU_CASES))
def test_prelu_bit_exact(case, calibration, tmp_path, keras):
    shape, shared_axes = PRELU_CASES[case]
    model = om.activation("prelu", input_shape=shape, shared_axes=shared_axes)
    tflite = convert(model, _representative(shape, *RANGES[calibration]), tmp_path / "prelu.tflite")
    g = load_tflite(tflite)
    assert [op.kind for op in g.ops] == ["PRELU"]
    compile_model(tflite, tmp_path / "out")
    inputs = [[np.tile(EVERY_INT8[:, None], (1, 8)).reshape(1, *shape)]] if shape[0] == 256 else None
    report = check_against_reference(tflite, tmp_path / "out", samples=4, seed=2, inputs=inputs)
    assert report.ok, report.summary()
    assert "tm_prelu_s8(" in (tmp_path / "out" / "model.c").read_text()


@pytest.mark.parametrize("alpha", [-0.5, -1.7, 1.5])
def test_leaky_relu_any_alpha(alpha, tmp_path, keras):
    """alpha -0.5 with equal input and output scales puts every odd negative input on a rounding tie, where
    LiteRT's -(x * |m|) and x * (-m) differ: the table takes LiteRT's side; alpha > 1 too."""
    tflite = one_op_model("leaky_relu", -2.0, 1.0, tmp_path / "leaky.tflite")

    def change(model):
        sg = te.subgraph(model)
        op = sg.operators[0]
        op.builtinOptions.alpha = alpha
        sg.tensors[op.outputs[0]].quantization.scale = list(sg.tensors[op.inputs[0]].quantization.scale)

    tflite.write_bytes(te.edit(tflite.read_bytes(), change))
    g = load_tflite(tflite)
    (op,) = g.ops
    want = litert_outputs(tflite, "leaky_relu", EVERY_INT8.reshape(1, 16, 16)).reshape(-1)
    table = lut.table(op, g)
    assert np.array_equal(table, want), mismatches(table, want)
    if have("gcc"):
        compile_model(tflite, tmp_path / "out")
        check_c(tflite, tmp_path / "out", "leaky_relu")


@pytest.mark.emulator
def test_activation_chain_bit_exact_on_mps2_an386(tmp_path, keras):
    from toolchain.boards import get_board
    from toolchain.pipeline.api import deploy

    if not (have("qemu-system-arm") and have("arm-none-eabi-gcc")):
        pytest.skip("qemu-system-arm or arm-none-eabi-gcc not found")
    model = om.activation_chain()
    tflite = convert(model, om.representative(model.input_shape[1:]), tmp_path / "chain.tflite")
    kinds = [op.kind for op in load_tflite(tflite).ops]
    assert {"TANH", "HARD_SWISH", "LEAKY_RELU", "PRELU", "LOGISTIC"} <= set(kinds), kinds
    result = deploy(tflite, get_board("mps2-an386"), tmp_path / "run", samples=3, progress=lambda _: None)
    assert result.bit_exact, result.mismatches[:5]


@pytest.fixture(scope="module")
def base_models(tmp_path_factory, keras):
    """One converted model per table op (ELU edited from TANH), to re-quantize by editing the flatbuffer."""
    folder = tmp_path_factory.mktemp("lut_base")
    return {kind: one_op_model(kind, -1.0, 1.0, folder / f"{kind}.tflite").read_bytes()
            for kind in ("sigmoid", "tanh", "hard_swish", "leaky_relu", "elu")}


def requantized(buf: bytes, in_q: tuple[float, int], out_q: tuple[float, int]) -> bytes:
    def change(model):
        sg = te.subgraph(model)
        op = sg.operators[0]
        for tid, (scale, zero_point) in ((op.inputs[0], in_q), (op.outputs[0], out_q)):
            sg.tensors[tid].quantization.scale = [float(np.float32(scale))]
            sg.tensors[tid].quantization.zeroPoint = [int(zero_point)]

    return te.edit(buf, change)


@pytest.mark.parametrize("kind", ["sigmoid", "tanh", "hard_swish", "leaky_relu", "elu"])
def test_tables_match_litert_over_random_quantizations(kind, base_models, tmp_path):
    """60 random (input, output) quantizations per op, log-uniform scales (input 1e-6..10, output 1e-4..1): the table is
    LiteRT's output on all 256 inputs every time (float rounding at the table's steps included)."""
    from toolchain.compiler.frontend import parse_tflite
    from toolchain.compiler.ops import OPS

    rng = np.random.default_rng(17)
    checked = 0
    for _ in range(60):
        in_q = (10 ** rng.uniform(-6, 1), int(rng.integers(-128, 128)))
        out_q = (1 / 256, -128) if kind == "sigmoid" else (10 ** rng.uniform(-4, 0), int(rng.integers(-128, 128)))
        buf = requantized(base_models[kind], in_q, out_q)
        g = parse_tflite(buf)
        (op,) = g.ops
        if OPS.get(op.kind).check(op, g):  # e.g. HARD_SWISH scales LiteRT refuses too
            continue
        path = tmp_path / f"{kind}.tflite"
        path.write_bytes(buf)
        want = litert_outputs(path, kind, EVERY_INT8.reshape(1, 16, 16)).reshape(-1)
        table = lut.table(op, g)
        assert np.array_equal(table, want), f"{in_q} -> {out_q}: " + mismatches(table, want)
        checked += 1
    assert checked >= 40
