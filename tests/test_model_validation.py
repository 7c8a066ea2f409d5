"""A structurally bad .tflite is refused with one ToolchainError naming what is wrong, before anything is written.

Each reproducer edits the flatbuffer of a good model (tests/tflite_edit.py); the good ones are converted
once per module. Tensor ids below are those the converter gives these one- and two-op models:
conv/dense = [input 0, bias 1, weights 2, output 3], softmax/maxpool = [input 0, output 1];
mean and reshape are a CONV_2D followed by that op.
"""
from __future__ import annotations

import math

import pytest

import op_models as om
import tflite_edit as te
from conftest import convert
from toolchain.cli import main
from toolchain.compiler import compile_model
from toolchain.verify.check import check_against_reference
from toolchain.errors import ModelError, ToolchainError, UnsupportedOpsError

BASES = {"conv": om.conv2d, "dense": om.dense, "softmax": om.softmax, "maxpool": om.maxpool, "mean": om.mean,
         "reshape": om.reshape}
INPUT, BIAS, WEIGHTS, OUTPUT = 0, 1, 2, 3


@pytest.fixture(scope="module")
def base(tmp_path_factory, keras):
    """name -> the good model's flatbuffer bytes."""
    folder = tmp_path_factory.mktemp("bases")
    found = {}
    for name, build in BASES.items():
        model = build()
        found[name] = convert(model, om.representative(model.input_shape[1:]), folder / f"{name}.tflite").read_bytes()
    return found


def setter(target, **values):
    """An edit setting attributes of `target(model)` (an operator, tensor, quantization or options)."""
    def change(model):
        obj = target(model)
        for key, value in values.items():
            setattr(obj, key, value)
    return change


def op(kind):
    return lambda m: te.operator(m, kind)


def options(kind):
    return lambda m: te.operator(m, kind).builtinOptions


def tensor(tid):
    return lambda m: te.tensor(m, tid)


def quant(tid):
    return lambda m: te.tensor(m, tid).quantization


def reverse_ops(m):
    te.subgraph(m).operators.reverse()


def self_loop(m):
    conv = te.operator(m, "CONV_2D")
    conv.inputs = [conv.outputs[0], *conv.inputs[1:]]


def no_graph(role):
    def change(m):
        setattr(te.subgraph(m), role, [])
        setattr(m.signatureDefs[0], role, [])
    return change


def two_writers(m):
    te.operator(m, "MEAN").outputs = list(te.operator(m, "CONV_2D").outputs)


def weight_zero_point(m):
    q = te.tensor(m, WEIGHTS).quantization
    q.zeroPoint = [5] + [0] * (len(q.zeroPoint) - 1)


def short_buffer(m):
    b = m.buffers[te.tensor(m, WEIGHTS).buffer]
    b.data = b.data[:-1]


def signature_input(m):
    m.signatureDefs[0].inputs[0].tensorIndex = 999


CASES = {
    # structure: ids, arity, order
    "op order reversed": ("mean", reverse_ops, ModelError, r"reads '.*' \(#4\) before any op writes it"),
    "self-loop": ("conv", self_loop, ModelError, "reads its own output"),
    "two writers": ("mean", two_writers, ModelError, "already written by op #0 CONV_2D"),
    "no inputs": ("conv", no_graph("inputs"), ModelError, "the graph has no input"),
    "no outputs": ("conv", no_graph("outputs"), ModelError, "the graph has no output"),
    "op input 999": ("conv", setter(op("CONV_2D"), inputs=[999, WEIGHTS, BIAS]), ModelError,
                     r"op #0 input 0 is tensor 999, but the graph has 4 tensor\(s\)"),
    "required input -1": ("conv", setter(op("CONV_2D"), inputs=[INPUT, -1, BIAS]), ModelError,
                          "required input 1 is omitted"),
    "too few inputs": ("conv", setter(op("CONV_2D"), inputs=[INPUT]), ModelError,
                       r"has 1 input\(s\), CONV_2D takes 2 to 3"),
    "opcode out of range": ("conv", setter(op("CONV_2D"), opcodeIndex=7), ModelError, "operator code 7"),
    "signature tensor 999": ("conv", signature_input, ModelError, "signature input 0 is tensor 999"),
    "signature output not the graph's": ("conv", setter(te.subgraph, outputs=[]), ModelError,
                                         r"the signature's outputs \(tensors \[3\]\) are not the graph's"),
    "reshape shape input -1": ("reshape", setter(op("RESHAPE"), inputs=[4, -1]), ModelError,
                               "required input 1 is omitted"),
    "buffer index 999": ("conv", setter(tensor(WEIGHTS), buffer=999), ModelError, "uses buffer 999"),
    # options
    "dilation 0": ("conv", setter(options("CONV_2D"), dilationHFactor=0), ModelError, "dilationHFactor is 0"),
    "stride 0": ("conv", setter(options("CONV_2D"), strideW=0), ModelError, "strideW is 0"),
    "stride -2": ("conv", setter(options("CONV_2D"), strideH=-2), ModelError, "strideH is -2"),
    "pool size 0": ("maxpool", setter(options("MAX_POOL_2D"), filterHeight=0), ModelError, "filterHeight is 0"),
    "softmax beta nan": ("softmax", setter(options("SOFTMAX"), beta=math.nan), ModelError,
                         "beta nan must be finite and positive"),
    "softmax beta inf": ("softmax", setter(options("SOFTMAX"), beta=math.inf), ModelError, "beta inf"),
    "softmax beta 0": ("softmax", setter(options("SOFTMAX"), beta=0.0), ModelError, "beta 0.0"),
    # shapes and buffers
    "batch -1": ("conv", setter(tensor(INPUT), shape=[-1, 12, 12, 4]), ModelError,
                 r"shape \[-1, 12, 12, 4\] is not static and positive"),
    "zero channels": ("conv", setter(tensor(OUTPUT), shape=[1, 12, 12, 0]), ModelError, "is not static and positive"),
    "rank 5": ("conv", setter(tensor(OUTPUT), shape=[1, 1, 12, 12, 8]), ModelError, "rank 5"),
    "buffer one byte short": ("conv", short_buffer, ModelError, "needs 288 bytes, its buffer holds 287"),
    "bias of rank 2": ("conv", setter(tensor(BIAS), shape=[8, 1]), UnsupportedOpsError,
                       r"has shape \[8, 1\], expected \[8\]"),
    "weights of rank 3": ("conv", setter(tensor(WEIGHTS), shape=[8, 9, 4]), UnsupportedOpsError,
                          r"filter \[8, 9, 4\]"),
    # quantization
    "scale nan": ("conv", setter(quant(INPUT), scale=[math.nan]), ModelError, "scale nan is not a positive"),
    "scale inf": ("conv", setter(quant(INPUT), scale=[math.inf]), ModelError, "scale inf is not a positive"),
    "scale 0": ("conv", setter(quant(INPUT), scale=[0.0]), ModelError, "scale 0.0 is not a positive"),
    "scale negative": ("conv", setter(quant(INPUT), scale=[-0.5]), ModelError, "scale -0.5 is not a positive"),
    "scale denormal": ("conv", setter(quant(INPUT), scale=[1e-45]), ModelError, "normal float32"),
    "zero point 300": ("conv", setter(quant(INPUT), zeroPoint=[300]), ModelError,
                       r"zero point 300 is outside the int8 range -128\.\.127"),
    "empty zero points": ("conv", setter(quant(INPUT), zeroPoint=[]), ModelError,
                          r"1 scale\(s\) but 0 zero point\(s\)"),
    "scales out of proportion": ("conv", setter(quant(INPUT), scale=[1e30]), UnsupportedOpsError,
                                 "output rescale factor .* is too large"),
    "weight zero point 5": ("conv", weight_zero_point, UnsupportedOpsError, "zero point 5; int8 weights must be"),
    # stored output shapes the kernels would write past
    "fc output [262145, 128]": ("dense", setter(tensor(OUTPUT), shape=[262145, 128]), UnsupportedOpsError,
                                r"has shape \[262145, 128\], but its inputs give \[1, 10\]"),
    "conv output channels": ("conv", setter(tensor(OUTPUT), shape=[1, 12, 12, 9]), UnsupportedOpsError,
                             r"has shape \[1, 12, 12, 9\], but its inputs give \[1, 12, 12, 8\]"),
    "conv output batch": ("conv", setter(tensor(OUTPUT), shape=[2, 12, 12, 8]), UnsupportedOpsError,
                          r"but its inputs give \[1, 12, 12, 8\]"),
    "softmax output shape": ("softmax", setter(tensor(1), shape=[1, 32]), UnsupportedOpsError,
                             r"has shape \[1, 32\], but its inputs give \[1, 16\]"),
    "pool output channels": ("maxpool", setter(tensor(1), shape=[1, 6, 6, 5]), UnsupportedOpsError,
                             r"but its inputs give \[1, 6, 6, 4\]"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_model_is_refused_before_writing(case, base, tmp_path):
    name, change, error, match = CASES[case]
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(te.edit(base[name], change))
    with pytest.raises(error, match=match):
        compile_model(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_prints_one_error_without_traceback(base, tmp_path, capsys):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(te.edit(base["dense"], setter(tensor(OUTPUT), shape=[262145, 128])))
    assert main(["compile", str(bad), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err, err
    assert len(err.strip().splitlines()) <= 4, err
    assert "262145" in err
    assert not (tmp_path / "out").exists()


def test_every_problem_is_listed_in_one_error(base, tmp_path):
    def change(m):
        te.tensor(m, INPUT).quantization.scale = [math.nan]
        te.operator(m, "CONV_2D").builtinOptions.strideW = 0

    bad = tmp_path / "bad.tflite"
    bad.write_bytes(te.edit(base["conv"], change))
    with pytest.raises(ModelError, match=r"2 problem\(s\)") as err:
        compile_model(bad, tmp_path / "out")
    assert "scale nan" in str(err.value) and "strideW is 0" in str(err.value)


def test_litert_failure_under_check_is_one_error(base, tmp_path, monkeypatch):
    good = tmp_path / "good.tflite"
    good.write_bytes(base["softmax"])
    compile_model(good, tmp_path / "out")

    class Refusing:
        def __init__(self, model):
            raise RuntimeError("kernels/softmax.cc:1 failed\nNode number 0 (SOFTMAX) failed to prepare.")

    monkeypatch.setattr("toolchain.verify.check.ReferenceModel", Refusing)
    with pytest.raises(ToolchainError, match="LiteRT cannot run .*failed; Node number 0 \\(SOFTMAX\\)"):
        check_against_reference(good, tmp_path / "out", samples=1)


def test_good_bases_still_compile(base, tmp_path):
    for name, buf in base.items():
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(buf)
        assert compile_model(path, tmp_path / name).arena_bytes > 0
