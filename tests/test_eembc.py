"""The EEMBC runner mode (`--harness eembc`, docs/PROTOCOL.md): the firmware driven over its UART, on a TCP socket
under QEMU, by our host driver exactly as the EnergyRunner drives a board in performance mode; its results against
LiteRT BUILTIN_REF on the same input."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import have
from toolchain.boards import get_board
from toolchain.cli import main
from toolchain.compiler import compile_model
from toolchain.compiler.model_plan import ModelPlan
from toolchain.errors import ToolchainError
from toolchain.firmware import build_firmware, eembc_profile
from toolchain.runners.eembc import COMMAND_MAX, host_bytes, qemu_eembc, qemu_eembc_command
from toolchain.verify.reference import ReferenceModel

pytestmark = [pytest.mark.emulator,
              pytest.mark.skipif(not (have("arm-none-eabi-gcc") and have("qemu-system-arm")),
                                 reason="needs arm-none-eabi-gcc and qemu-system-arm")]

PRINTED = 0.0005 + 1e-6  # m-results print three decimals, rounded


@pytest.fixture(scope="module")
def compiled(zoo_tflite, tmp_path_factory):
    """compiled(name) -> (tflite, model directory), compiled once per module."""
    done = {}

    def get(name: str):
        if name not in done:
            out = tmp_path_factory.mktemp(f"eembc-{name}")
            done[name] = (zoo_tflite(name), out)
            compile_model(done[name][0], out)
        return done[name]

    return get


def reference_int8(tflite, x: np.ndarray) -> np.ndarray:
    return ReferenceModel(tflite).run([x])[0].reshape(-1)


def dequantize(q: np.ndarray, spec) -> np.ndarray:
    return np.float32(spec.scale) * (q.astype(np.float32) - np.float32(spec.zero_point))


def check_classifier(device, tflite, plan: ModelPlan, profile: str, seed: int) -> None:
    """One random input loaded in db lines, `infer 1 1`: the int8 output exactly LiteRT's, m-results its
    dequantized values to the printed precision."""
    spec = plan.inputs[0]
    x = np.random.default_rng(seed).integers(-128, 128, spec.shape).astype(np.int8)
    device.load(host_bytes(profile, x))
    run = device.infer(1, 1)
    expected = reference_int8(tflite, x)
    assert device.quantized_results() == tuple(int(v) for v in expected)
    np.testing.assert_allclose(run.results, dequantize(expected, plan.outputs[0]), rtol=0, atol=PRINTED)
    assert run.laps_us[1] > run.laps_us[0] and run.n == 1 and run.warmup == 1


def test_kws_session_like_the_runner_on_mps2_an386(compiled, tmp_path):
    tflite, model_dir = compiled("kws")
    plan = ModelPlan.load(model_dir)
    fw = build_firmware(model_dir, get_board("mps2-an386"), tmp_path / "fw", harness="eembc")
    assert fw.samples == 0 and fw.sizes.stack_bound.bytes is not None  # no test set; the stack still bounded
    with qemu_eembc(fw.elf, fw.board) as device:
        assert device.name() == "dut-[tinyml-toolchain]"
        assert device.profile() == "kws01"
        first = device.timestamp()
        for seed in (0, 1):  # a second input through the same buffer
            check_classifier(device, tflite, plan, "kws01", seed)
        assert device.timestamp() > first
        assert device.results() == device.infer(2, 0).results  # the same input again: the same results


def test_parser_reports_errors_and_keeps_going(compiled, tmp_path):
    _, model_dir = compiled("kws")
    fw = build_firmware(model_dir, get_board("mps2-an386"), tmp_path / "fw", harness="eembc")
    with qemu_eembc(fw.elf, fw.board) as device:
        def error(command: str) -> str:
            lines = device.send(command, check=False, limit=False)
            assert len(lines) == 1 and lines[0].startswith("e-["), lines
            return lines[0]

        assert error("db 00") == "e-[Buffer not allocated]"
        assert error("infer 1 0") == "e-[Input db has 0 bytes, expected 490]"
        assert error("x" * (COMMAND_MAX + 1)) == "e-[Command too long: over 80 characters]"
        assert device.send("x" * COMMAND_MAX, check=False) == ["e-[Unknown command: " + "x" * COMMAND_MAX + "]"]
        assert error("bogus 1 2") == "e-[Unknown command: bogus]"
        assert error("db load") == "e-[Command 'db load' requires the # of bytes]"
        assert error("db load 0") == "e-[Command 'db load' must be >0 bytes]"
        assert error("db load 491") == "e-[Supplied buffer size 491 exceeds maximum of 490]"
        assert device.send("db load 3") == ["m-[Expecting 3 bytes]"]
        assert error("db 01zz") == "e-[Invalid hex digit 'zz']"
        assert error("db 012") == "e-[Insufficent number of hex digits]"
        assert device.send("db 0203ff") == ["m-load-done"]  # 01 stayed loaded before the bad digit
        assert device.send("db print") == ["m-buffer-01-02-03"]
        assert error("infer 0") == "e-[Inference iterations must be >0]"
        assert error("infer 1 -1") == "e-[Inference warmup must be >=0]"
        assert device.profile() == "kws01"  # still answering
        with pytest.raises(ToolchainError, match=r"`infer 1 0` failed: e-\[Input db has 3 bytes"):
            device.infer(1, 0)


def test_ad01_quantizes_float_input_and_reports_the_reconstruction_error(compiled, tmp_path):
    tflite, model_dir = compiled("ad")
    plan = ModelPlan.load(model_dir)
    fw = build_firmware(model_dir, get_board("mps2-an386"), tmp_path / "fw", harness="eembc")
    spec, out = plan.inputs[0], plan.outputs[0]
    values = np.random.default_rng(3).normal(0, 1, spec.shape).astype(np.float32)
    # The device's quantization: x / scale in float32, rounded half away from zero, plus the zero point, saturated.
    q = values / np.float32(spec.scale)
    x = np.clip(np.sign(q) * np.floor(np.abs(q) + np.float32(0.5)) + spec.zero_point, -128, 127).astype(np.int8)
    expected = reference_int8(tflite, x)
    mse = float(np.mean((dequantize(expected, out) - values.reshape(-1)) ** 2))
    with qemu_eembc(fw.elf, fw.board) as device:
        assert device.profile() == "ad01"
        device.load(host_bytes("ad01", values))
        run = device.infer(1, 0)
        assert device.quantized_results() == tuple(int(v) for v in expected)
    assert len(run.results) == 1 and run.results[0] == pytest.approx(mse, abs=PRINTED + 1e-4 * mse)


def test_ic01_host_sends_uint8_pixels_the_device_subtracts_128(compiled, tmp_path):
    tflite, model_dir = compiled("ic")
    fw = build_firmware(model_dir, get_board("mps2-an386"), tmp_path / "fw", harness="eembc")
    with qemu_eembc(fw.elf, fw.board) as device:
        assert device.profile() == "ic01"
        check_classifier(device, tflite, ModelPlan.load(model_dir), "ic01", seed=7)


def test_stm32f4_usart_receive_on_netduinoplus2(compiled, tmp_path):
    tflite, model_dir = compiled("kws")
    fw = build_firmware(model_dir, get_board("netduinoplus2"), tmp_path / "fw", harness="eembc")
    with qemu_eembc(fw.elf, fw.board) as device:
        assert device.name() == "dut-[tinyml-toolchain]"
        check_classifier(device, tflite, ModelPlan.load(model_dir), "kws01", seed=5)


def test_profiles_input_formats_and_the_cli(compiled, tmp_path, capsys):
    _, kws_dir = compiled("kws")
    _, ad_dir = compiled("ad")
    kws, ad = ModelPlan.load(kws_dir), ModelPlan.load(ad_dir)
    assert eembc_profile(kws) == "kws01" and eembc_profile(ad) == "ad01" and eembc_profile(kws, "ic01") == "ic01"
    odd = ModelPlan.from_dict({**kws.to_dict(), "inputs": [{**kws.to_dict()["inputs"][0], "shape": [1, 7, 7, 1]}]})
    with pytest.raises(ToolchainError, match=r"cannot tell which EEMBC benchmark a int8 \[1, 7, 7, 1\] input is: "
                                             r"pass --eembc-profile"):
        eembc_profile(odd)
    x = np.array([-128, -1, 0, 127], np.int8)
    assert host_bytes("kws01", x) == bytes([0x80, 0xFF, 0x00, 0x7F])
    assert host_bytes("ic01", x) == host_bytes("vww01", x) == bytes([0, 127, 128, 255])  # the device subtracts 128
    assert host_bytes("ad01", np.array([1.0], np.float32)) == b"\x00\x00\x80\x3f"
    cmd = qemu_eembc_command(tmp_path / "fw.elf", get_board("mps2-an386"), 4321)
    assert cmd[cmd.index("-serial") + 1] == "tcp:127.0.0.1:4321,server=on,wait=on" and "-sandbox" in cmd
    # The image for the uint8-pixel profiles builds (here forced onto the KWS model) and says what it is.
    assert main(["build", str(kws_dir), "--board", "mps2-an385", "--harness", "eembc", "--eembc-profile", "ic01",
                 "--build-dir", str(tmp_path / "ic")]) == 0
    printed = capsys.readouterr().out
    assert "EEMBC runner mode (ic01)" in printed and (tmp_path / "ic" / "firmware.bin").is_file()
    assert main(["build", str(kws_dir), "--eembc-profile", "kws01"]) == 2
    assert "error: --eembc-profile applies to --harness eembc only" in capsys.readouterr().err
