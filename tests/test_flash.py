"""`tinyml flash` (issue 16, item 2): build, flash through a probe, read the board's UART, same report as `tinyml run`.

Tested for real without hardware: the GDB path loads the image into QEMU's gdbstub (`-S -gdb`, no -kernel: only the
load puts code there) with gdb-multiarch, and the serial path reads QEMU's UART on a TCP socket with pyserial's
socket:// URL. The OpenOCD and pyOCD command lines are checked, OpenOCD's against Debian's config scripts; every
missing probe, tool or port is one clear error before any build work."""
from __future__ import annotations

import contextlib
import shutil
import socket
import select
import subprocess
from pathlib import Path

import numpy as np
import pytest

import op_models as om
from conftest import convert
from toolchain.boards import get_board
from toolchain.cli import main
from toolchain.cli.run import print_run
from toolchain.errors import ToolchainError
from toolchain.firmware import FirmwareSizes
from toolchain.pipeline import api
from toolchain.pipeline.deploy import DeviceRun
from toolchain.probes import ProbeOptions, check_probe, flash_commands, openocd_args, run_probe
from toolchain.runners.protocol import parse
from toolchain.runners.qemu import SANDBOX
from toolchain.runners.serial_port import read_until_exit, resolve_port

needs_emulator = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("cmake", "arm-none-eabi-gcc", "qemu-system-arm", "gdb-multiarch")),
    reason="needs cmake, arm-none-eabi-gcc, qemu-system-arm and gdb-multiarch")
pytestmark = pytest.mark.emulator
REAL_BOARDS = ("nucleo-l4r5zi", "disco-f746ng", "nucleo-h7a3zi-q", "nucleo-u575zi-q", "nrf52840-dk")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def qemu_gdb_target(board_name: str):
    """QEMU halted at reset with no image (-S, no -kernel), its gdbstub and its UART (a TCP server) on loopback
    ports: yields (gdb server, serial URL)."""
    board = get_board(board_name)
    gdb, uart = free_port(), free_port()
    cmd = ["qemu-system-arm", "-M", board.qemu_machine, "-nographic", "-monitor", "none", "-no-reboot", *SANDBOX,
           "-icount", f"shift={board.icount_shift},align=off,sleep=off", "-S", "-gdb", f"tcp:127.0.0.1:{gdb}",
           "-serial", f"tcp:127.0.0.1:{uart},server=on,wait=on"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # QEMU says when its UART's server socket listens (connecting to check would be the one connection it takes)
        ready, _, _ = select.select([proc.stderr], [], [], 20)
        assert ready and b"waiting for connection" in proc.stderr.readline()
        yield f"127.0.0.1:{gdb}", f"socket://127.0.0.1:{uart}"
    finally:
        proc.kill()
        proc.wait(10)


@pytest.fixture(scope="module")
def small_tflite(tmp_path_factory):
    model = om.conv2d(filters=8, input_shape=(12, 12, 3), activation="relu")
    return convert(model, om.representative((12, 12, 3), n=4), tmp_path_factory.mktemp("flash") / "conv.tflite")


@needs_emulator
def test_flash_over_gdb_into_qemu_reports_what_run_reports(small_tflite, tmp_path):
    """load through QEMU's gdbstub, read the UART over socket://: bit-exact, and the same counts as `tinyml run`."""
    board = get_board("mps2-an386")
    emulated = api.deploy(small_tflite, board, tmp_path / "run", samples=2, progress=lambda _: None)
    with qemu_gdb_target(board.name) as (gdb, url):
        flashed = api.flash(small_tflite, board, tmp_path / "flash", probe="gdb", port=url, samples=2, timeout=120,
                            probe_options=ProbeOptions(gdb_server=gdb), progress=lambda _: None)
    assert flashed.bit_exact and not flashed.on_silicon
    s, e = flashed.summary(), emulated.summary()
    assert s["instructions_mean"] == e["instructions_mean"] > 0
    assert s["measured_on"] == "emulator (instruction counts)"
    for k in range(2):
        assert all(np.array_equal(a, b) for a, b in zip(flashed.run.outputs(flashed.plan, k),
                                                        emulated.run.outputs(emulated.plan, k)))
    assert "TM EXIT code=0" in (tmp_path / "flash" / "uart.log").read_text()


@needs_emulator
def test_flash_cli_prints_the_run_report(small_tflite, tmp_path, capsys):
    with qemu_gdb_target("mps2-an386") as (gdb, url):
        status = main(["flash", str(small_tflite), "--board", "mps2-an386", "--probe", "gdb", "--gdb-server", gdb,
                       "--port", url, "--samples", "1", "--out", str(tmp_path / "out"), "--json",
                       str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert status == 0
    assert "bit-exact vs LiteRT BUILTIN_REF                   yes (1 samples)" in out
    assert "instructions / inference" in out and "model RAM (arena + stack bound)" in out
    assert DeviceRun.load(tmp_path / "out" / "result").bit_exact


@needs_emulator
def test_serial_read_stops_at_the_exit_line_and_times_out_with_the_last_lines(tmp_path):
    """A board that never prints its exit line: one error naming the timeout and quoting the last output."""
    import serial

    with serial.serial_for_url("loop://", timeout=0.05) as ser:
        ser.write(b"TM BEGIN protocol=1 board=x\r\nTM END status=0\r\nTM EXIT code=0\r\nafter\r\n")
        log = read_until_exit(ser, 5, "x")
        assert "TM EXIT code=0" in log and parse(log).exit_code == 0
    with serial.serial_for_url("loop://", timeout=0.05) as ser:
        ser.write(b"TM BEGIN protocol=1 board=x\nTM LAYER 0 CONV_2D 10\n")
        with pytest.raises(ToolchainError, match=r"no 'TM EXIT' line from x within 0.5 s; last output: .*CONV_2D"):
            read_until_exit(ser, 0.5, "x")


def test_probe_command_lines():
    elf = Path("/work dir/fw $x/firmware.elf")
    l4 = get_board("nucleo-l4r5zi")
    (cmd,) = flash_commands("openocd", elf, l4, ProbeOptions(probe_id="0669FF37"))
    assert cmd[1:] == ["-c", "adapter serial 0669FF37", "-f", "board/st_nucleo_l4.cfg",
                       "-c", "program {/work dir/fw $x/firmware.elf} verify reset exit"]
    h7 = get_board("nucleo-h7a3zi-q")
    assert openocd_args(h7) == ["-f", "interface/stlink-dap.cfg", "-c", "transport select dapdirect_swd",
                                "-f", "target/stm32h7x.cfg"]
    with pytest.raises(ToolchainError, match="OpenOCD cannot be given the path"):
        flash_commands("openocd", Path("/tmp/a}b/firmware.elf"), l4, ProbeOptions())


def test_pyocd_command_line(monkeypatch, tmp_path):
    fake = tmp_path / "pyocd"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setattr("sys.executable", "/nonexistent/python")
    (cmd,) = flash_commands("pyocd", Path("/x/firmware.elf"), get_board("nrf52840-dk"), ProbeOptions(probe_id="68"))
    assert cmd == [str(fake), "flash", "--target", "nrf52840", "--uid", "68", "/x/firmware.elf"]


@needs_emulator
def test_gdb_command_line_starts_the_image_from_its_vector_table(small_tflite, tmp_path):
    compiled, image = api.prepare_image(small_tflite, get_board("mps2-an386"), tmp_path, samples=1,
                                        progress=lambda _: None)
    (cmd,) = flash_commands("gdb", image.elf, image.board, ProbeOptions(gdb_server="localhost:3333"))
    steps = cmd[cmd.index("-batch") + 1:-1][1::2]
    assert steps[2:4] == ["target extended-remote localhost:3333", "monitor reset halt"]
    assert steps[4] == "load" and steps[-1] == "detach"
    sp, pc = (int(s.split("=")[1], 16) for s in steps[5:7])
    ram = image.board.ram
    assert ram.origin < sp <= ram.origin + ram.size and pc & 1 and cmd[-1] == str(image.elf)


@pytest.mark.skipif(not shutil.which("openocd"), reason="needs openocd")
@pytest.mark.parametrize("name", [b for b in REAL_BOARDS if get_board(b).flashing.openocd])
def test_openocd_finds_every_board_config_and_fails_cleanly_without_a_probe(name, tmp_path):
    """Debian's OpenOCD reads each board's configs (a wrong name fails before the adapter is opened); with no probe
    attached the flash is one error naming the fix."""
    board = get_board(name)
    elf = tmp_path / "firmware.elf"
    elf.write_bytes(b"\x7fELF")
    commands = flash_commands("openocd", elf, board, ProbeOptions())
    with pytest.raises(ToolchainError, match=r"openocd failed to flash .*\n.*hint: is the probe connected") as info:
        run_probe(commands, "openocd", board, timeout=60)
    assert "Can't find" not in str(info.value) and "couldn't open" not in str(info.value).lower()


@pytest.mark.parametrize("argv, problem", [
    (["--probe", "gdb"], "--probe gdb needs --gdb-server HOST:PORT"),
    (["--probe", "gdb", "--gdb-server", "host:22; shell"], "is not HOST:PORT"),
    (["--probe", "openocd", "--probe-id", "a b"], "is not a probe serial number"),
    (["--port", "/dev/ttyNOPE9"], "serial port /dev/ttyNOPE9 does not exist"),
])
def test_flash_refuses_before_any_work(argv, problem, tmp_path, capsys, small_tflite):
    status = main(["flash", str(small_tflite), "--board", "nucleo-l4r5zi", "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err
    assert status == 2 and problem in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_missing_tools_name_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))
    board = get_board("nucleo-l4r5zi")
    for probe, fix in (("openocd", "apt-get install openocd"), ("pyocd", "tinyml-toolchain[probes]"),
                       ("gdb", "apt-get install gdb-multiarch")):
        with pytest.raises(ToolchainError, match="is not installed") as info:
            check_probe(probe, board, ProbeOptions(gdb_server="localhost:3333"))
        assert fix in str(info.value)


def test_no_serial_port_found_names_the_fix(monkeypatch):
    monkeypatch.setattr("toolchain.runners.serial_port.probe_ports", lambda: [])
    with pytest.raises(ToolchainError, match="no board's serial port found.*\n.*--port /dev/ttyACM0"):
        resolve_port(None)
    assert resolve_port("socket://localhost:4000") == "socket://localhost:4000"


def test_a_board_run_reports_measured_cycles_not_instructions(small_tflite, tmp_path, capsys):
    """On silicon the DWT counter runs: the report gives measured cycles and time (SysTick at the core clock),
    per layer too, and no instruction counts."""
    board = get_board("nucleo-l4r5zi")
    compiled = api.compile_stage(small_tflite, tmp_path / "c", target="dsp")
    out = compiled.plan.outputs[0]
    log = "\n".join([
        "TM BEGIN protocol=1 board=nucleo-l4r5zi samples=1 layers=1 arena=1 input_bytes=432 "
        f"output_bytes={out.bytes} tick_hz=120000000 marker_ticks=10",
        f"TM LAYER 0 CONV_2D {compiled.plan.macs}",
        f"TM SAMPLE 0 exit=0 ticks=12020 cycles=12030 out={'00' * out.bytes}",
        "TM LAYERTICKS 0 12010", "TM STACK used=400 size=800", "TM END status=0", "TM EXIT code=0"])
    sizes = FirmwareSizes({"model weights": 1000}, {"arena": 500, "stack": 800})
    run = DeviceRun(board, compiled.plan, parse(log), sizes, [], [[np.zeros(out.shape, np.int8)]], emulator="board")
    assert run.on_silicon and run.instructions(0) is None
    assert run.cycles(0) == 12030 - 20 and run.layer_cycles(0) == [12000]
    s = run.summary()
    assert s["measured_on"].startswith("silicon") and s["instructions_mean"] is None
    assert s["cycles_mean"] == 12010 and s["estimated_latency_ms"] == pytest.approx(12010 / 120e3)
    print_run(run)
    shown = capsys.readouterr().out
    assert "summary (measured on the board: DWT cycles)" in shown and "cycles / inference (DWT CYCCNT)" in shown
    assert "instructions" not in shown


@needs_emulator
def test_flash_eembc_checks_the_runner_protocol_and_leaves_the_board_ready(zoo_tflite, tmp_path, capsys):
    """--harness eembc: the EEMBC runner-mode firmware loaded through the gdbstub, then driven over the UART like
    the EnergyRunner (name, profile, db load, infer 1 1): every int8 output LiteRT's."""
    with qemu_gdb_target("mps2-an386") as (gdb, url):
        status = main(["flash", str(zoo_tflite("kws")), "--board", "mps2-an386", "--probe", "gdb", "--gdb-server", gdb,
                       "--port", url, "--harness", "eembc", "--samples", "2",
                       "--timeout", "60", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    out = captured.out
    assert status == 0, out + captured.err
    assert "int8 outputs identical to LiteRT BUILTIN_REF  2/2 samples" in out
    assert "profile" in out and "kws01" in out and "ready for the EEMBC EnergyRunner" in out
