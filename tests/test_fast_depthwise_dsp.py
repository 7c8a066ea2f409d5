"""The dsp DEPTHWISE_CONV_2D kernels (firmware/kernels/dsp/tm_depthwise_conv2d_s8.c): bit-exact with LiteRT
BUILTIN_REF on the host and on mps2-an386 (M4) / mps2-an505 (M33) across odd channel counts (1, 3, 5, 17),
SAME/VALID with odd and even sizes (padding on every side, a folded ZeroPadding2D), stride 2, fused
ReLU/ReLU6, per-channel and per-tensor weights and int8 extreme inputs; dilation 2 and ch_mult 2 fall back to
the portable kernel; scratch sizes equal the C companions' for every scratch budget, the layout chosen within
the budget (the leanest layouts bit-exact too); the folded requantization is TFLite's. The KxK variants (5x5,
7x7, even and rectangular windows, stride 1 and 2) likewise, on wide and tall images."""
from __future__ import annotations

import ctypes
import re
import shutil
import subprocess

import numpy as np
import pytest

import op_models as om
import tflite_edit as te
from conftest import convert
from toolchain.boards import get_board
from toolchain.compiler.driver import FIRMWARE_DIR, KERNEL_INCLUDE
from toolchain.compiler import compile_model, driver
from toolchain.compiler.frontend import load_tflite
from toolchain.compiler.ops.dsp import depthwise_conv2d as dsp_dw
from toolchain.compiler.ops.dsp.depthwise_conv2d import DepthwiseConv2DDsp, scratch_budget, scratch_layout
from toolchain.compiler.ops.variants import SCRATCH_BUDGET, variant_for
from toolchain.compiler.passes import optimize
from toolchain.compiler.planner import plan_memory
from toolchain.pipeline.api import compile_stage, deploy
from toolchain.verify.check import check_against_reference

pytestmark = pytest.mark.emulator

S1, S2, REF = "tm_depthwise_conv2d_s8_dsp_3x3s1", "tm_depthwise_conv2d_s8_dsp_3x3s2", "tm_depthwise_conv2d_s8"
K1, K2 = "tm_depthwise_conv2d_s8_dsp_kxks1", "tm_depthwise_conv2d_s8_dsp_kxks2"
DSP_C = FIRMWARE_DIR / "kernels" / "dsp" / "tm_depthwise_conv2d_s8.c"


def _bias(keras):
    return keras.initializers.RandomUniform(-0.5, 0.5)


def _dw(keras, name, strides=1, padding="same", activation=None, multiplier=1):
    return keras.layers.DepthwiseConv2D(3, strides=strides, padding=padding, depth_multiplier=multiplier,
                                        activation=activation, bias_initializer=_bias(keras), name=name)


def many_layers_model(keras):
    """1, 3, 5 and 17 channels on odd and even sizes: SAME stride 1 and 2 (padding 1/1 or 0/1 per side),
    VALID stride 1 and 2, a folded ZeroPadding2D (explicit padding), ReLU and ReLU6; wide layers (the ring of
    rows), narrow ones (planes; 17 channels in groups of 4 and 1); then dilation 2 and ch_mult 2, which the
    portable kernel runs."""
    keras.utils.set_random_seed(5)
    x = inputs = keras.Input((46, 45, 1), name="input")
    x = _dw(keras, "s1_same_c1", activation="relu")(x)               # 46x45: ring, run down the columns
    x = _dw(keras, "s2_valid_c1", strides=2, padding="valid")(x)     # 22x22: ring
    x = keras.layers.Conv2D(3, 1, bias_initializer=_bias(keras), name="pw_c3")(x)
    x = _dw(keras, "s1_same_c3", activation="relu6")(x)              # 22x22: planes
    x = _dw(keras, "s2_same_even_c3", strides=2)(x)                   # 11x11: pads 0 before, 1 after
    x = keras.layers.Conv2D(5, 1, bias_initializer=_bias(keras), name="pw_c5")(x)
    x = keras.layers.ZeroPadding2D(((4, 3), (6, 2)), name="pad")(x)  # 18x19
    x = _dw(keras, "s1_valid_folded_pad_c5", padding="valid", activation="relu6")(x)  # 16x17
    x = keras.layers.Conv2D(17, 1, bias_initializer=_bias(keras), name="pw_c17")(x)
    x = _dw(keras, "s1_same_c17")(x)                                  # 16x17: channel groups 4, 4, 4, 4, 1
    x = _dw(keras, "s2_same_c17", strides=2, activation="relu")(x)   # 8x9: width 17 pads 1 on each side
    x = _dw(keras, "s2_valid_c17", strides=2, padding="valid")(x)    # 3x4
    x = om._dilated_layer(keras, "depthwise", 1, 3, 1, "same", 2, "relu")(x)  # dilation 2: portable
    x = _dw(keras, "mult2", multiplier=2)(x)                          # ch_mult 2: portable
    return keras.Model(inputs, x, name="dsp_dw_many_layers")


def small_model(keras):
    """Per-tensor weights (one multiplier for every channel) on images taller than wide, which the kernels
    run column by column (transposed weights)."""
    keras.utils.set_random_seed(6)
    x = inputs = keras.Input((9, 5, 4), name="input")
    x = _dw(keras, "s1_same", activation="relu")(x)
    x = _dw(keras, "s2_same", strides=2)(x)
    x = _dw(keras, "s1_valid", padding="valid")(x)
    return keras.Model(inputs, x, name="dsp_dw_per_tensor")


def _dwk(keras, kernel, name, strides=1, padding="same", activation=None):
    return keras.layers.DepthwiseConv2D(kernel, strides=strides, padding=padding, activation=activation,
                                        bias_initializer=_bias(keras), name=name)


def kxk_model(keras):
    """5x5 and 7x7 at stride 1 and 2 with SAME padding (1 before and 2 after, 2/2, 2/3 ...), a 2x5 VALID window
    (lines of 5 taps, 2 lines), a 4x4 one (even: a zero tap per line), 3, 5 and 17 channels, ReLU and ReLU6."""
    keras.utils.set_random_seed(9)
    x = inputs = keras.Input((22, 30, 3), name="input")
    x = _dwk(keras, 5, "k5_s1_same_c3", activation="relu6")(x)        # 22x30
    x = _dwk(keras, 5, "k5_s2_same_c3", strides=2)(x)                  # 11x15: pads 1/2 on both axes
    x = keras.layers.Conv2D(5, 1, bias_initializer=_bias(keras), name="pw_c5")(x)
    x = _dwk(keras, 7, "k7_s1_same_c5", activation="relu")(x)          # 11x15
    x = _dwk(keras, (2, 5), "k2x5_valid_c5", padding="valid")(x)       # 10x11
    x = _dwk(keras, 7, "k7_s2_same_c5", strides=2)(x)                  # 5x6: pads 2/3 rows, 2/3 columns
    x = keras.layers.Conv2D(17, 1, bias_initializer=_bias(keras), name="pw_c17")(x)
    x = _dwk(keras, 7, "k7_s1_same_c17")(x)                            # 5x6: the window wider than the image
    x = _dwk(keras, 4, "k4_s2_same_c17", strides=2)(x)                 # 3x3: pads 0 before, 1 after
    return keras.Model(inputs, x, name="dsp_dw_kxk")


def kxk_tall_model(keras):
    """Images taller than wide (lines down the columns, the packed weights transposed): a 5x3 window becomes 3
    lines of 5 taps, a 2x4 one 4 lines of 3 (its 2 taps and a zero one)."""
    keras.utils.set_random_seed(10)
    x = inputs = keras.Input((13, 6, 4), name="input")
    x = _dwk(keras, 5, "k5_s1_same", activation="relu")(x)             # 13x6
    x = _dwk(keras, (5, 3), "k5x3_s2_same", strides=2)(x)               # 7x3
    x = _dwk(keras, (2, 4), "k2x4_s1_same")(x)                          # 7x3
    x = _dwk(keras, 7, "k7_s1_valid", padding="valid")(keras.layers.ZeroPadding2D(3)(x))  # 7x3, folded padding
    return keras.Model(inputs, x, name="dsp_dw_kxk_tall")


def _extreme_inputs(shape, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([np.full(shape, -128), np.full(shape, 127), rng.integers(-128, 128, shape)]).astype(np.int8)


def _calls(model_c: str) -> list[str]:
    return re.findall(r"(tm_depthwise_conv2d_s8\w*)\(&", model_c)


MODELS = {
    # builder, input shape, per-channel weights, the depthwise kernels model.c must call, in order
    "many_layers": (many_layers_model, (46, 45, 1), True, [S1, S2, S1, S2, S1, S1, S2, S2, REF, REF]),
    "per_tensor_tall": (small_model, (9, 5, 4), False, [S1, S2, S1]),
    "kxk": (kxk_model, (22, 30, 3), True, [K1, K2, K1, K1, K2, K1, K2]),
    "kxk_per_tensor": (kxk_model, (22, 30, 3), False, [K1, K2, K1, K1, K2, K1, K2]),
    "kxk_tall": (kxk_tall_model, (13, 6, 4), True, [K1, K2, K1, K1]),
}


@pytest.fixture(scope="module")
def tflites(tmp_path_factory, keras):
    """Each model converted once per worker."""
    out = {}
    for name, (build, shape, per_channel, _) in MODELS.items():
        model = build(keras)
        path = tmp_path_factory.mktemp(name) / f"{name}.tflite"
        out[name] = convert(model, om.representative(shape, seed=len(name)), path, per_channel=per_channel)
    return out


@pytest.mark.parametrize("name", MODELS)
def test_host_bit_exact_and_variants_used(name, tflites, tmp_path):
    _, _, _, expected = MODELS[name]
    compiled = compile_stage(tflites[name], tmp_path / "c", target="dsp", bands="none")
    model_c = (compiled.out_dir / "model.c").read_text()
    assert _calls(model_c) == expected
    assert "tm_pad_s8(" not in model_c  # the ZeroPadding2D is folded into the depthwise's padding
    report = check_against_reference(tflites[name], compiled.out_dir, samples=6, seed=3)
    assert report.ok, report.summary()


@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an505"])
def test_device_bit_exact_on_extreme_inputs(board, tflites, tmp_path):
    name = "many_layers"
    _, shape, _, expected = MODELS[name]
    result = deploy(tflites[name], get_board(board), tmp_path, inputs=_extreme_inputs(shape, 7), kernels="dsp",
                    bands="none", progress=lambda _: None)
    assert result.bit_exact, result.mismatches[:3]
    assert _calls((tmp_path / "c" / "model.c").read_text()) == expected


@pytest.mark.parametrize("name", ["kxk", "kxk_per_tensor"])
def test_kxk_device_bit_exact_on_extreme_inputs(name, tflites, tmp_path):
    """With the default row bands (each band a call over its rows, in place where the planner overlaps them)."""
    _, shape, _, expected = MODELS[name]
    result = deploy(tflites[name], get_board("mps2-an386"), tmp_path, inputs=_extreme_inputs(shape, 8),
                    kernels="dsp", progress=lambda _: None)
    assert result.bit_exact, result.mismatches[:3]
    calls = _calls((tmp_path / "c" / "model.c").read_text())
    assert set(calls) == set(expected) and len(calls) > len(expected)  # some layers in bands


def test_a_left_shift_requantization_falls_back(tflites, tmp_path):
    """A multiplier above 1 (shift > 0) is outside the folded requantization: that layer runs the portable
    kernel, the others stay on the dsp variants, and the model stays bit-exact."""
    tflite = tmp_path / "shifted.tflite"

    def shrink_last_output_scale(model):
        q = te.tensor(model, te.operator(model, "DEPTHWISE_CONV_2D", -1).outputs[0]).quantization
        q.scale = [s / 1000 for s in q.scale]

    tflite.write_bytes(te.edit(tflites["per_tensor_tall"].read_bytes(), shrink_last_output_scale))
    compiled = compile_stage(tflite, tmp_path / "c", target="dsp", bands="none")
    assert _calls((compiled.out_dir / "model.c").read_text()) == [S1, S2, REF]
    report = check_against_reference(tflite, compiled.out_dir, samples=4, seed=4)
    assert report.ok, report.summary()


class Dims(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


@pytest.fixture(scope="module")
def dsp_lib(tmp_path_factory) -> ctypes.CDLL:
    """The dsp depthwise file built for the host (tm_simd.h's C equivalents)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found")
    lib = tmp_path_factory.mktemp("dspdw") / "libtm_dsp_dw.so"
    cmd = ["gcc", "-std=c99", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror", f"-I{KERNEL_INCLUDE}",
           str(DSP_C), "-o", str(lib)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return ctypes.CDLL(str(lib))


BUDGETS = [0, 300, 1000, 1600, 3000, 4096, 100_000]  # leanest, 1-3 channel groups, groups of 4, capped


@pytest.mark.parametrize("name", MODELS)
def test_scratch_bytes_equal_the_c_buffer_size(name, tflites, dsp_lib):
    """For every plane budget (the planner's first pass: none; second pass: the arena bytes free)."""
    g = optimize(load_tflite(tflites[name]))
    checked, layouts = 0, set()
    for base in (op for op in g.ops if op.kind == "DEPTHWISE_CONV_2D"):
        for budget in [None, *BUDGETS]:
            op = base if budget is None else base.replace(options={**base.options, SCRATCH_BUDGET: budget})
            v = variant_for(op, g, "dsp")
            if v is None:
                continue
            assert isinstance(v, DepthwiseConv2DDsp)
            fn = getattr(dsp_lib, f"{v.kernel_for(op, g)}_get_buffer_size")
            fn.restype = ctypes.c_int32
            fn.argtypes = [ctypes.POINTER(Dims)] * 3 + [ctypes.c_int32]
            dims = [g.tensors[t].nhwc() for t in (op.inputs[0], op.inputs[1], op.outputs[0])]
            assert fn(*(ctypes.byref(Dims(*d)) for d in dims), scratch_budget(op)) == v.scratch_bytes(op, g) > 0
            _, h_out, w_out, channels = dims[2]
            stride = int(v.kernel_for(op, g)[-1])  # ..._3x3s1 / ..._kxks2
            _, kh, kw, _ = dims[1]
            lines = dsp_dw.window_lines(kh, kw, h_out, w_out)
            layouts.add(scratch_layout(h_out, w_out, channels, stride, scratch_budget(op), *lines)[0])
            checked += 1
    assert checked == (len(BUDGETS) + 1) * sum(k != REF for k in MODELS[name][3])
    if name == "many_layers":
        assert {0, 1, 2, 4, 3} <= layouts  # the ring, planes in groups of 1, 2, 4 and of every channel
    if name == "kxk":
        assert {0, 1, 3, 4, 5} <= layouts  # the ring of kr rows, planes in groups of 1, 3, 4 and of all 5


def test_scratch_budget_choice():
    """Planes within min(budget, 4096) bytes, the ring within the budget; the leanest (budget 0, the planner's
    first pass) is one channel's planes or the ring, whichever is smaller. KWS (25x5x64, lines down the
    columns): one channel's planes are 7 rows x 28 int16 = 392 bytes, the ring 10,752."""
    kws = [scratch_layout(25, 5, 64, 1, b) for b in (0, 391, 392, 1200, 1568, 2048, 3136, 4096, 10**6)]
    assert kws == [(1, 392), (1, 392), (1, 392), (3, 1176), (4, 1568), (4, 1568), (8, 3136), (8, 3136),
                   (8, 3136)]
    # VWW's 12x12x32 stride 2: a plane 25 rows x 26 (1,300 bytes), no 4 within 4096; the ring (4,992 bytes)
    # where the budget allows it, else 3 channels' planes.
    assert scratch_layout(12, 12, 32, 2, 5000) == (0, 4992)
    assert scratch_layout(12, 12, 32, 2, 4991) == (3, 3900)
    assert scratch_layout(12, 12, 32, 2, 0) == (1, 1300)
    # Wide (48x48x8): a plane (50 rows x 50) is over the cap; the ring (2,400 bytes) whatever the budget.
    assert {scratch_layout(48, 48, 8, 1, b) for b in (0, 2400, 4096, 10**6)} == {(0, 2400)}
    # Every channel's planes where they fit (6x6x3: 8 x 8 int16 = 128 bytes per channel), else the ring when
    # it is within the budget (3 rows x 3 channels x 8 int16 = 144 bytes); with no budget one channel's planes,
    # smaller than the ring.
    assert scratch_layout(6, 6, 3, 1, 384) == (3, 384)
    assert scratch_layout(6, 6, 3, 1, 200) == (0, 144)
    assert scratch_layout(6, 6, 3, 1, 0) == (1, 128)


def test_leanest_layouts_bit_exact_on_host(tflites, tmp_path, monkeypatch):
    """Every layer with plane budget 0 (the planner's first pass), then 300 bytes (groups of 1-3 channels):
    the kernels still match LiteRT, the budget reaches the call."""
    for budget in (0, 300):
        monkeypatch.setattr(dsp_dw, "scratch_budget", lambda op, b=budget: b)
        compiled = compile_stage(tflites["many_layers"], tmp_path / f"c{budget}", target="dsp", bands="none")
        model_c = (compiled.out_dir / "model.c").read_text()
        assert _calls(model_c) == MODELS["many_layers"][3]
        assert re.search(rf"{S1}\(&\w+, &\w+, \w+, {budget}, ", model_c), model_c
        report = check_against_reference(tflites["many_layers"], compiled.out_dir, samples=3, seed=5)
        assert report.ok, report.summary()


def _tflite_requantize(acc: int, multiplier: int, shift: int) -> int:
    """TFLite's MultiplyByQuantizedMultiplier for shift <= 0, in Python integers."""
    ab = acc * multiplier
    high = (ab + (1 << 30)) >> 31  # SaturatingRoundingDoublingHighMul (no saturation: multiplier < 2^31)
    e = -shift
    mask = (1 << e) - 1
    rem, threshold = high & mask, (mask >> 1) + (1 if high < 0 else 0)
    return (high >> e) + (1 if rem > threshold else 0)


def test_folded_requantization_is_tflites():
    """The kernel's (SMMLAR(2 acc, m, 2^(e-1) + offset 2^e) + sign(acc)) >> e, with SMMLAR's rounding and
    arithmetic shifts, equals TFLite's double rounding plus the output offset, ties and signs included."""
    rng = np.random.default_rng(8)
    accs = np.concatenate([rng.integers(-(1 << 29), 1 << 29, 4000), np.arange(-600, 600)])
    for _ in range(60):
        multiplier = int(rng.integers(1 << 30, 1 << 31))
        shift = -int(rng.integers(1, 20))
        offset = int(rng.integers(-128, 128))
        e = -shift
        rounding = (1 << (e - 1)) + offset * (1 << e)
        for acc in accs.tolist():
            smmlar = ((rounding << 32) + 2 * acc * multiplier + (1 << 31)) >> 32
            fast = (smmlar + (-1 if acc < 0 else 0)) >> e
            assert fast == _tflite_requantize(acc, multiplier, shift) + offset, (acc, multiplier, shift)


def _kxk_budget(form: str, op, g) -> int:
    """The scratch budget that makes a KxK layer take `form`: lean (0), roomy (every channel's planes) or ring
    (the ring of kr rows where that is the layout its exact size gives; else lean)."""
    if form == "roomy":
        return 1 << 20
    if form == "ring" and op.kind == "DEPTHWISE_CONV_2D":
        _, kh, kw, _ = g.tensors[op.inputs[1]].shape
        _, h, w, c = g.tensors[op.outputs[0]].nhwc()
        stride = op.options.get("strideH", 1)
        kr, kc = dsp_dw.window_lines(kh, kw, h, w)
        along = h if dsp_dw.transposed(h, w) else w
        ring = kr * c * (stride * ((along + 1) & ~1) + kc - 1) * 2
        return ring if scratch_layout(h, w, c, stride, ring, kr, kc)[0] == 0 else 0
    return 0


@pytest.mark.parametrize("form", ["lean", "ring", "roomy"])
@pytest.mark.parametrize("name", ["kxk", "kxk_tall"])
def test_kxk_in_place_bit_exact_on_host(name, form, tflites, tmp_path, monkeypatch):
    """Every layer's scratch budget forced to a form, planned once: the planner overlaps some KxK layer's output
    with its input (the variant's in-place rule: planes, ring of kr rows along W, along H) and the result is
    still LiteRT's."""
    def plan_with(g, target):
        ops = tuple(op.replace(options={**op.options, SCRATCH_BUDGET: _kxk_budget(form, op, g)}) for op in g.ops)
        g = g.replace(ops=ops)
        return g, plan_memory(g, target=target)

    monkeypatch.setattr(driver, "plan_with_variants", plan_with)
    result = compile_model(tflites[name], tmp_path / "c", target="dsp", bands="none")
    sizes = {t.id: t.bytes for t in result.plan.tensors if t.id is not None}
    overlapping = {o.layer for o in result.plan.overlaps if -sizes[o.writer] < o.shift < sizes[o.reader]}
    assert any(result.plan.layers[i].op == "DEPTHWISE_CONV_2D" for i in overlapping), result.plan.overlaps
    if form == "ring":
        g = optimize(load_tflite(tflites[name]))
        assert any(_kxk_budget(form, op, g) > 0 for op in g.ops if op.kind == "DEPTHWISE_CONV_2D")
    report = check_against_reference(tflites[name], tmp_path / "c", samples=3, seed=6)
    assert report.ok, report.summary()
