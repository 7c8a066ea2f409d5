"""--kernels cmsis-nn: Arm's CMSIS-NN called on our plan, from the user's checkout (CMSIS_NN_ROOT).

Without CMSIS_NN_ROOT only the error paths run (CMSIS-NN is never downloaded for a test). With it: the scratch
sizes the compiler plans equal CMSIS-NN's own `_get_buffer_size_dsp/_mve` (built on the host from the checkout),
and KWS/IC-like models run bit-exact against tflite-micro on the M4 (DSP code of CMSIS-NN) and the M55 (MVE).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import op_models as om
from conftest import convert, have
from toolchain.boards import get_board
from toolchain.cli import main
from toolchain.compiler import cmsis_nn, compile_model
from toolchain.compiler.frontend import load_tflite
from toolchain.compiler.passes import optimize
from toolchain.errors import ToolchainError
from toolchain.pipeline.bench import compare_with_cmsis_nn, run_matrix

ROOT = os.environ.get(cmsis_nn.ENV, "")
needs_cmsis = pytest.mark.skipif(not ROOT, reason=f"{cmsis_nn.ENV} is not set (a CMSIS-NN checkout)")


def kws_like(seed=0):
    """The KWS/VWW op mix and then some: a depthwise on one input channel (MVE turns it into a CONV_2D), a
    general conv, 3x3 depthwise (DSP's 3x3 kernel), 1x1 convs with stride 1 and 2, a depthwise with multiplier 2
    and an odd filter, a dilated conv with an odd channel count, average pool, FC with no fused activation,
    softmax."""
    keras = om._keras(seed)
    L = keras.layers
    x = inputs = keras.Input((20, 9, 1), name="input")
    x = L.DepthwiseConv2D(3, depth_multiplier=4, padding="same", activation="relu", bias_initializer=om._bias(keras))(x)
    x = L.Conv2D(16, (5, 3), strides=2, padding="same", activation="relu", bias_initializer=om._bias(keras))(x)
    x = L.DepthwiseConv2D(3, padding="same", activation="relu6", bias_initializer=om._bias(keras))(x)
    x = L.Conv2D(19, 1, activation="relu", bias_initializer=om._bias(keras))(x)
    x = L.DepthwiseConv2D((5, 3), strides=2, depth_multiplier=2, padding="valid", bias_initializer=om._bias(keras))(x)
    x = L.Conv2D(12, 1, strides=2, padding="valid", activation="relu", bias_initializer=om._bias(keras))(x)
    x = om._dilated_layer(keras, "conv", 21, 3, 1, "same", 2, "relu")(x)
    x = L.AveragePooling2D((x.shape[1], x.shape[2]))(x)
    x = L.Flatten()(x)
    x = L.Dense(12, bias_initializer=om._bias(keras))(x)
    return keras.Model(inputs, L.Softmax()(x), name="kws_like")


def ic_like(seed=1):
    """The IC (ResNet) op mix: 3-channel input, residual ADDs (one with a fused ReLU), stride-2 convs, a max
    pool, a MEAN (no CMSIS-NN kernel: ours) and an FC with ReLU before the classifier."""
    keras = om._keras(seed)
    L = keras.layers
    x = inputs = keras.Input((16, 16, 3), name="input")
    x = L.Conv2D(16, 3, padding="same", activation="relu", bias_initializer=om._bias(keras))(x)
    y = L.Conv2D(16, 3, padding="same", activation="relu", bias_initializer=om._bias(keras))(x)
    y = L.Conv2D(16, 3, padding="same", bias_initializer=om._bias(keras))(y)
    x = L.ReLU()(L.Add()([x, y]))
    y = L.Conv2D(24, 3, strides=2, padding="same", activation="relu", bias_initializer=om._bias(keras))(x)
    y = L.Conv2D(24, 3, padding="same", bias_initializer=om._bias(keras))(y)
    x = L.Conv2D(24, 1, strides=2, bias_initializer=om._bias(keras))(x)
    x = L.Add()([x, y])
    x = L.MaxPooling2D(2)(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(20, activation="relu", bias_initializer=om._bias(keras))(x)
    x = L.Dense(10, bias_initializer=om._bias(keras))(x)
    return keras.Model(inputs, L.Softmax()(x), name="ic_like")


MODELS = {"kws_like": kws_like, "ic_like": ic_like}
CALLS = {"kws_like": ("arm_convolve_wrapper_s8", "arm_depthwise_conv_wrapper_s8", "arm_avgpool_s8",
                      "arm_fully_connected_per_channel_s8", "arm_softmax_s8"),
         "ic_like": ("arm_convolve_wrapper_s8", "arm_elementwise_add_s8", "arm_max_pool_s8",
                     "arm_fully_connected_per_channel_s8", "arm_softmax_s8", "tm_mean_s8(")}


@pytest.fixture(scope="module")
def tflite(tmp_path_factory, keras):
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            model = MODELS[name]()
            rep = om.representative(model.input_shape[1:], n=48)
            cache[name] = convert(model, rep, tmp_path_factory.mktemp(name) / f"{name}.tflite")
        return cache[name]

    return get


# -- without a checkout --------------------------------------------------------------------------------------

def test_without_cmsis_nn_root_one_line_error_and_nothing_written(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv(cmsis_nn.ENV, raising=False)
    model = convert(om.conv2d(), om.representative(om.IMAGE), tmp_path / "conv.tflite")
    with pytest.raises(ToolchainError) as err:
        compile_model(model, tmp_path / "out", target="cmsis-nn")
    assert "\n" not in str(err.value)
    assert str(err.value) == ("--kernels cmsis-nn needs CMSIS_NN_ROOT=<a CMSIS-NN checkout> "
                              "(github.com/ARM-software/CMSIS-NN); it is never downloaded by this toolchain")
    assert main(["compile", str(model), "-o", str(tmp_path / "cli"), "--kernels", "cmsis-nn"]) != 0
    assert "CMSIS_NN_ROOT" in capsys.readouterr().err
    with pytest.raises(ToolchainError, match="CMSIS_NN_ROOT"):  # bench refuses before running anything
        run_matrix([model], ["mps2-an386"], ["ref", "cmsis-nn"], tmp_path / "bench")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conv.tflite"]


def test_a_directory_that_is_not_a_checkout_is_named_with_its_missing_file(monkeypatch, tmp_path):
    (tmp_path / "Include").mkdir()
    (tmp_path / "Include" / "arm_nnfunctions.h").write_text("")
    monkeypatch.setenv(cmsis_nn.ENV, str(tmp_path))
    with pytest.raises(ToolchainError, match=r"has no Include/arm_nn_types\.h"):
        cmsis_nn.find_checkout()
    monkeypatch.setenv(cmsis_nn.ENV, str(tmp_path / "nowhere"))
    with pytest.raises(ToolchainError, match="is not a directory"):
        cmsis_nn.find_checkout()


def test_every_board_core_runs_cmsis_nn():
    for name in ("mps2-an385", "mps2-an386", "mps2-an505", "mps3-an547"):
        get_board(name).check_kernels("cmsis-nn")


def test_vs_cmsis_nn_is_instructions_over_cmsis_nn_on_the_same_model_and_board():
    rows = [{"model": "kws", "board": "b", "kernels": k, "instructions": n}
            for k, n in (("ref", 3000), ("dsp", 500), ("cmsis-nn", 1000))]
    rows += [{"model": "kws", "board": "other", "kernels": "ref", "instructions": 7},
             {"model": "ic", "board": "b", "kernels": "ref", "instructions": None, "error": "failed"}]
    assert [r["vs_cmsis_nn"] for r in compare_with_cmsis_nn(rows)] == [3.0, 0.5, None, None, None]


# -- with a checkout -----------------------------------------------------------------------------------------

@needs_cmsis
@pytest.mark.skipif(not have("gcc"), reason="needs a host C compiler")
@pytest.mark.parametrize("name", sorted(MODELS))
def test_planned_scratch_is_cmsis_nn_get_buffer_size(tflite, tmp_path, name):
    """Every CMSIS-NN layer's planned scratch equals max(_dsp, _mve) of CMSIS-NN's own size functions."""
    g = optimize(load_tflite(tflite(name)))
    root = Path(ROOT)
    lines, want = [], []
    for op in g.ops:
        k = cmsis_nn.kernel_for(op, g)
        if op.kind == "FULLY_CONNECTED":  # MVE's buffer holds kernel sums: compiled into flash, no arena
            assert k.scratch_bytes(op, g) == 0
        if k is None or op.kind not in ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D"):
            continue
        inp, out = g.tensors[op.inputs[0]].nhwc(), g.tensors[op.outputs[0]].nhwc()
        want.append(k.scratch_bytes(op, g))
        if op.kind == "AVERAGE_POOL_2D":
            fn, args = "arm_avgpool_s8_get_buffer_size", f"{out[2]}, {inp[3]}"
            lines.append(f"MAX2({fn}_dsp({args}), {fn}_mve({args}))")
            continue
        w = g.tensors[op.inputs[1]].nhwc()
        geo = cmsis_nn.conv_geometry(op, g, w[1], w[2])
        tiles = (f".stride = {{ .w = {geo['stride'].w}, .h = {geo['stride'].h} }}, "
                 f".padding = {{ .w = {geo['padding'].w}, .h = {geo['padding'].h} }}, "
                 f".dilation = {{ .w = {geo['dilation'].w}, .h = {geo['dilation'].h} }}")
        dims = ", ".join(f"&(cmsis_nn_dims){{ {d[0]}, {d[1]}, {d[2]}, {d[3]} }}" for d in (inp, w, out))
        if op.kind == "CONV_2D":
            params, fn = f"&(cmsis_nn_conv_params){{ {tiles} }}", "arm_convolve_wrapper_s8_get_buffer_size"
        else:
            params = f"&(cmsis_nn_dw_conv_params){{ .ch_mult = {out[3] // inp[3]}, {tiles} }}"
            fn = "arm_depthwise_conv_wrapper_s8_get_buffer_size"
        lines.append(f"MAX2({fn}_dsp({params}, {dims}), {fn}_mve({params}, {dims}))")
    source = tmp_path / "sizes.c"
    source.write_text('#include <stdio.h>\n#include "arm_nnfunctions.h"\n#define MAX2(a, b) ((a) > (b) ? (a) : (b))\n'
                      "int main(void)\n{\n" + "".join(f'    printf("%d\\n", (int)({c}));\n' for c in lines)
                      + "    return 0;\n}\n")
    sizes = [root / "Source" / f for f in ("ConvolutionFunctions/arm_convolve_get_buffer_sizes_s8.c",
                                           "ConvolutionFunctions/arm_depthwise_conv_get_buffer_sizes_s8.c",
                                           "PoolingFunctions/arm_avgpool_get_buffer_sizes_s8.c")]
    exe = tmp_path / "sizes"
    subprocess.run(["gcc", "-std=c99", "-O1", f"-I{root / 'Include'}", str(source), *map(str, sizes), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    got = [int(v) for v in subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()]
    assert got == want


@needs_cmsis
@pytest.mark.emulator
@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_cmsis_nn_bit_exact_on_device(tflite, tmp_path, board, name):
    from toolchain.pipeline.api import deploy

    result = deploy(tflite(name), get_board(board), tmp_path, kernels="cmsis-nn", samples=2,
                    progress=lambda _: None)
    assert result.bit_exact, result.mismatches[:3]
    assert result.plan.target == "cmsis-nn" and result.plan.reference == "tflm"
    model_c = (tmp_path / "c" / "model.c").read_text()
    assert '#include "arm_nnfunctions.h"' in model_c
    for call in CALLS[name]:
        assert call in model_c, call
    assert cmsis_nn.CmsisCheckout.load(tmp_path / "c").root == Path(ROOT).resolve()
    assert not list((tmp_path / "c").rglob("arm_*.c"))  # compiled from the checkout, never copied
    assert result.summary()["flash_by_part"].get("CMSIS-NN kernels", 0) > 0
