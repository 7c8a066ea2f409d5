"""Renode (optional, never installed or downloaded by us): the .resc scripts for the boards Renode ships, the
[renode] table of board.toml, `tinyml run --emulator renode`'s refusal when `renode` is not on PATH, and the
runner's plumbing end to end with a fake `renode` (a Python script first on PATH that reads the .resc it is given,
checks it and writes a canned UART log to the file backend), so no test needs real Renode."""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from toolchain.boards import _load, all_boards, get_board
from toolchain.cli import main
from toolchain.errors import MissingToolError, ToolchainError
from toolchain.runners.renode import (
    CONSOLE_LOG, SCRIPT, UART_LOG, monitor_path, renode_command, renode_script, run_renode, write_renode_script,
)

# board -> (the Renode platform file, the console UART's peripheral): USART1 0x40011000 on the STM32s, UARTE0
# 0x40002000 on the nRF52840 (Renode's platforms/cpus/stm32f4.repl, stm32f746.repl, nrf52840.repl)
RENODE_BOARDS = {
    "netduinoplus2": ("platforms/cpus/stm32f4.repl", "sysbus.usart1", 0x40011000),
    "disco-f746ng": ("platforms/boards/stm32f7_discovery-bb.repl", "sysbus.usart1", 0x40011000),
    "nrf52840-dk": ("platforms/boards/nrf52840dk_nrf52840.repl", "sysbus.uart0", 0x40002000),
}

# Renode's Monitor tokenizer (renode-infrastructure, UserInterface/Tokenizer/Tokenizer.cs and PathToken.cs): a path
# token is `@` then non-space characters or `\ `, up to whitespace or `;`; its value reads `\ ` as a space.
PATH_TOKEN = re.compile(r"@(?:(?!;)((\\ )|\S))+")


def path_token_value(text: str) -> tuple[str, str]:
    """(the value of the path token `text` starts with, what follows it), as Renode's Monitor reads them."""
    match = PATH_TOKEN.match(text)
    assert match, text
    return match.group(0)[1:].replace("\\ ", " "), text[match.end():]


def commands(script: str) -> list[str]:
    """The script's Monitor commands (no comments, no `:name:` lines, no blank lines)."""
    return [line for line in script.splitlines() if line.strip() and not line.startswith(("#", ":"))]


@pytest.mark.parametrize("name", RENODE_BOARDS)
def test_board_toml_renode_tables(name):
    board = get_board(name)
    platform, uart, base = RENODE_BOARDS[name]
    assert board.renode is not None and (board.renode.platform, board.renode.uart) == (platform, uart)
    assert board.uart.base == base  # the UART Renode's file backend listens on is the console the firmware uses
    assert board.renode.performance_mips == board.clock_hz // 1_000_000
    board.check_emulated("renode")


def test_only_the_renode_boards_have_a_renode_table():
    assert {name for name, b in all_boards().items() if b.renode is not None} == set(RENODE_BOARDS)


@pytest.mark.parametrize("name", RENODE_BOARDS)
def test_script_creates_the_machine_loads_the_elf_and_routes_the_uart(name, tmp_path):
    board = get_board(name)
    platform, uart, _ = RENODE_BOARDS[name]
    elf, log = tmp_path / "fw" / "firmware.elf", tmp_path / "fw" / "uart.log"
    cmds = commands(renode_script(elf, board, log))
    assert cmds[:3] == ["using sysbus", f'mach create "{name}"', f"machine LoadPlatformDescription @{platform}"]
    assert f"sysbus.cpu PerformanceInMips {board.clock_hz // 1_000_000}" in cmds
    assert f"sysbus.nvic Frequency {board.clock_hz}" in cmds  # SysTick counts the board clock, as on silicon
    assert "sysbus.nvic PauseInsteadOfReset true" in cmds  # an emulator build's reset request stops the machine
    assert f"sysbus LoadELF @{elf}" in cmds
    assert f"{uart} CreateFileBackend @{log} true" in cmds
    assert f'{uart} AddLineHook "TM EXIT" "machine.PauseAndRequestEmulationPause()"' in cmds
    assert f"showAnalyzer {uart}" in cmds
    # the machine exists before anything uses it; the UART is routed before the run starts, which comes last
    assert cmds.index(f"sysbus LoadELF @{elf}") > 2 and cmds[-1] == "start"
    assert cmds.index(f"{uart} CreateFileBackend @{log} true") < cmds.index("start")


def test_renode_command_is_headless_and_includes_the_script(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "renode").write_text("#!/bin/sh\n")
    (bin_dir / "renode").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    script = tmp_path / "my run" / "renode.resc"
    cmd = renode_command(script)
    assert cmd[0] == str(bin_dir / "renode")
    assert cmd[1:5] == ["--console", "--disable-xwt", "--plain", "-e"]
    assert cmd[5].startswith("include @")
    assert path_token_value(cmd[5][len("include "):]) == (str(script), "")


def test_renode_missing_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingToolError) as info:
        renode_command(tmp_path / "renode.resc")
    assert info.value.message == "'renode' is not installed"
    assert "renode.io" in info.value.hint and "rerun" in info.value.hint


AWKWARD_DIRS = ["with space", "at@sign", "quote's", 'double"quote', "$dollar", "#hash", "`tick`", "a  two-spaces",
                "trailing ", "@ \"x\" 'y'"]


@pytest.mark.parametrize("directory", AWKWARD_DIRS)
def test_paths_with_spaces_at_signs_and_quotes_stay_one_path_token(directory, tmp_path):
    elf = tmp_path / directory / "firmware.elf"
    token = monitor_path(elf)
    value, rest = path_token_value(token + " true")
    assert value == str(elf) and rest == " true"  # the path ends where we meant, and nothing follows in it


@pytest.mark.parametrize("bad, shown", [
    ("semi;quit", "';'"), ("new\nline", "'\\n'"), ("back\\slash", "'\\\\'"), ("tab\tx", "'\\t'"),
    ('three"""quotes', "'\"\"\"'"), ("bell\x07", "'\\x07'"),
])
def test_paths_a_renode_script_cannot_hold_are_refused(bad, shown, tmp_path):
    board = get_board("netduinoplus2")
    with pytest.raises(ToolchainError, match="cannot be written into a Renode script") as info:
        renode_script(tmp_path / bad / "firmware.elf", board, tmp_path / "uart.log")
    assert shown in info.value.message
    with pytest.raises(ToolchainError, match="cannot be written into a Renode script"):
        renode_script(tmp_path / "firmware.elf", board, tmp_path / bad / "uart.log")


def _renode_toml(table: str) -> str:
    text = (get_board("netduinoplus2").path / "board.toml").read_text()
    return text[:text.index("[renode]")] + table


@pytest.mark.parametrize("table, problem", [
    ('[renode]\nplatform = "platforms/cpus/stm32f4.repl"\nuart = "sysbus.usart1"\ncpu_hz = 168000000\n',
     "unknown key 'cpu_hz' in [renode]"),
    ('[renode]\nplatform = "platforms/cpus/stm32f4.repl"\n', "no 'uart' in [renode]"),
    ('[renode]\nuart = "sysbus.usart1"\n', "no 'platform' in [renode]"),
    ('[renode]\nplatform = "/opt/my.repl"\nuart = "sysbus.usart1"\n', "[renode] platform must name a platform file"),
    ('[renode]\nplatform = "platforms/../../etc/x.repl"\nuart = "sysbus.usart1"\n',
     "[renode] platform must name a platform file"),
    ('[renode]\nplatform = "platforms/cpus/stm32f4.repl"\nuart = "sysbus.usart1; quit"\n',
     "[renode] uart must be a peripheral name"),
    ('[renode]\nplatform = "platforms/cpus/stm32f4.repl"\nuart = "sysbus.usart1"\nperformance_mips = 0\n',
     "[renode] performance_mips must be 1 to 100000"),
    ('[renode]\nplatform = "platforms/cpus/stm32f4.repl"\nuart = "sysbus.usart1"\nperformance_mips = "fast"\n',
     "'performance_mips' in [renode] must be an integer"),
])
def test_bad_renode_tables_are_refused(table, problem, tmp_path):
    (tmp_path / "board.toml").write_text(_renode_toml(table))
    with pytest.raises(ToolchainError, match=re.escape(problem)):
        _load(tmp_path / "board.toml")


def test_renode_table_is_optional(tmp_path):
    (tmp_path / "board.toml").write_text(_renode_toml(""))
    board = _load(tmp_path / "board.toml")
    assert board.renode is None and board.emulated
    with pytest.raises(ToolchainError, match=r"board netduinoplus2 has no \[renode\] table") as info:
        board.check_emulated("renode")
    assert all(name in info.value.hint for name in RENODE_BOARDS)


def test_qemu_runs_still_need_the_emulator_table():
    get_board("netduinoplus2").check_emulated("qemu")
    with pytest.raises(ToolchainError, match="board disco-f746ng is not emulated"):
        get_board("disco-f746ng").check_emulated()
    with pytest.raises(ToolchainError, match="board mps2-an386 has no \\[renode\\] table"):
        get_board("mps2-an386").check_emulated("renode")
    with pytest.raises(ToolchainError, match="unknown emulator 'gem5'"):
        get_board("mps2-an386").check_emulated("gem5")


@pytest.mark.parametrize("name", RENODE_BOARDS)
def test_tinyml_run_without_renode_fails_before_any_work(name, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    out = tmp_path / "out"
    code = main(["run", str(tmp_path / "missing.tflite"), "--board", name, "--emulator", "renode",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists() and "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0] == "error: 'renode' is not installed"
    assert len(lines) == 2 and "renode.io" in lines[1] and "then rerun" in lines[1]


@pytest.mark.parametrize("args, problem", [
    (["--board", "mps2-an386", "--emulator", "renode"], "board mps2-an386 has no [renode] table"),
    (["--board", "netduinoplus2", "--emulator", "renode", "--exact"], "--exact counts instructions with a QEMU"),
    (["--board", "nrf52840-dk"], "board nrf52840-dk is not emulated"),  # QEMU runs still refuse it
])
def test_tinyml_run_refuses_what_renode_cannot_do_before_any_work(args, problem, tmp_path, monkeypatch, capsys):
    _fake_renode(tmp_path, monkeypatch, "ok")  # renode "installed": the refusal is about the board or the options
    out = tmp_path / "out"
    code = main(["run", str(tmp_path / "missing.tflite"), *args, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists() and "Traceback" not in err
    assert problem in err.splitlines()[0]


# -- the runner, end to end with a fake `renode` -----------------------------------------------------------------

FAKE_RENODE = '''\
#!{python}
"""A stand-in for Renode: checks its command line and the .resc, writes the UART log, quits on `quit`."""
import json, os, re, subprocess, sys, time
from pathlib import Path

args = sys.argv[1:]
record = {{"argv": args, "pid": os.getpid()}}
assert args[:4] == ["--console", "--disable-xwt", "--plain", "-e"], args
match = re.fullmatch(r"include @((?:\\\\ |\\S)+)", args[4])
script = Path(match.group(1).replace("\\\\ ", " "))
text = script.read_text()
record["script"] = str(script)

def path_after(prefix):
    line = next(l for l in text.splitlines() if l.startswith(prefix))
    token = re.match(r"@((?:\\\\ |[^\\s;])+)", line[len(prefix):])
    return Path(token.group(1).replace("\\\\ ", " ")), line[len(prefix) + token.end():]

elf, _ = path_after("sysbus LoadELF ")
assert elf.is_file(), elf
uart = re.search(r"^(\\S+) CreateFileBackend ", text, re.M).group(1)
log, rest = path_after(uart + " CreateFileBackend ")
assert rest == " true", rest
assert not log.exists(), "the runner removes an old UART log"
assert text.rstrip().splitlines()[-1] == "start"
record.update(elf=str(elf), log=str(log), uart=uart)
Path(os.environ["FAKE_RENODE_RECORD"]).write_text(json.dumps(record))

mode = os.environ["FAKE_RENODE_MODE"]
if mode == "silent":
    print("There was an error executing command 'include'")
    sys.exit(1)
with open(log, "wb") as uart_file:
    if mode == "qemu":
        qemu = json.loads(os.environ["FAKE_RENODE_QEMU"]) + ["-kernel", str(elf)]
        uart_file.write(subprocess.run(qemu, capture_output=True, timeout=60).stdout)
    else:
        uart_file.write(Path(os.environ["FAKE_RENODE_LOG"]).read_bytes())
    uart_file.flush()
if mode == "deaf":
    time.sleep(600)
for line in sys.stdin:
    if line.strip() == "quit":
        record["quit"] = True
        Path(os.environ["FAKE_RENODE_RECORD"]).write_text(json.dumps(record))
        sys.exit(0)
'''

CANNED_LOG = "renode: some start-up noise\n" + (
    "TM BEGIN protocol=1 board=netduinoplus2 samples=2 layers=2 arena=64 input_bytes=4 output_bytes=2 "
    "tick_hz=168000000 marker_ticks=10\n") + textwrap.dedent("""\
    TM LAYER 0 FULLY_CONNECTED 24
    TM LAYER 1 SOFTMAX 0
    TM SAMPLE 0 exit=0 ticks=530 cycles=0 out=7f80
    TM LAYERTICKS 0 400 110
    TM SAMPLE 1 exit=0 ticks=630 cycles=0 out=0102
    TM LAYERTICKS 1 500 110
    TM STACK used=512 size=4096
    TM END status=0
    TM EXIT code=0
    """)


def _fake_renode(tmp_path: Path, monkeypatch, mode: str, log: str = CANNED_LOG) -> Path:
    """Put a fake `renode` first on PATH; returns the file it records what it saw into."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "renode"
    fake.write_text(FAKE_RENODE.format(python=sys.executable))
    fake.chmod(0o755)
    (tmp_path / "canned.log").write_text(log)
    record = tmp_path / "record.json"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_RENODE_MODE", mode)
    monkeypatch.setenv("FAKE_RENODE_LOG", str(tmp_path / "canned.log"))
    monkeypatch.setenv("FAKE_RENODE_RECORD", str(record))
    return record


def _elf(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    elf = directory / "firmware.elf"
    elf.write_bytes(b"\x7fELF not really")
    return elf


def test_run_renode_writes_the_script_beside_the_elf_reads_the_log_and_quits(tmp_path, monkeypatch):
    record = _fake_renode(tmp_path, monkeypatch, "ok")
    elf = _elf(tmp_path / "my build @1 'x'")
    (elf.parent / UART_LOG).write_text("TM BEGIN stale\n")  # a previous run's log is not read again
    result = run_renode(elf, get_board("netduinoplus2"), timeout=60)
    seen = json.loads(record.read_text())
    assert seen["script"] == str(elf.parent / SCRIPT) and seen["elf"] == str(elf)
    assert seen["log"] == str(elf.parent / UART_LOG) and seen["uart"] == "sysbus.usart1"
    assert seen["quit"]  # the runner ended Renode with its Monitor's `quit`
    assert (elf.parent / SCRIPT).read_text() == renode_script(elf, get_board("netduinoplus2"), elf.parent / UART_LOG)
    assert (elf.parent / CONSOLE_LOG).exists()
    assert result.complete and result.exit_code == 0 and result.header["tick_hz"] == 168000000
    assert [s.ticks for s in result.samples] == [530, 630] and result.samples[0].output == bytes([0x7F, 0x80])
    assert result.layers == [("FULLY_CONNECTED", 24), ("SOFTMAX", 0)] and result.stack_used == 512


def test_renode_deaf_to_quit_is_terminated(tmp_path, monkeypatch):
    from toolchain.runners import renode

    monkeypatch.setattr(renode, "QUIT_WAIT_S", 0.5)
    record = _fake_renode(tmp_path, monkeypatch, "deaf")
    result = run_renode(_elf(tmp_path / "fw"), get_board("netduinoplus2"), timeout=60)
    assert result.complete
    with pytest.raises(ProcessLookupError):
        os.kill(json.loads(record.read_text())["pid"], 0)


def test_output_after_tm_exit_is_not_read(tmp_path, monkeypatch):
    """A machine that went on (reset and ran again) before it paused: the run ends at the first TM EXIT."""
    _fake_renode(tmp_path, monkeypatch, "ok", CANNED_LOG + CANNED_LOG.replace("ticks=530", "ticks=999"))
    result = run_renode(_elf(tmp_path / "fw"), get_board("nrf52840-dk"), timeout=60)
    assert [s.ticks for s in result.samples] == [530, 630]


def test_a_hung_firmware_times_out_and_renode_is_stopped(tmp_path, monkeypatch):
    record = _fake_renode(tmp_path, monkeypatch, "ok", CANNED_LOG.split("TM SAMPLE 1")[0])
    with pytest.raises(ToolchainError, match=r"did not finish within 3 s on disco-f746ng under Renode") as info:
        run_renode(_elf(tmp_path / "fw"), get_board("disco-f746ng"), timeout=3)
    assert "TM LAYERTICKS 0 400 110" in info.value.message  # the last output, to see where it stopped
    assert json.loads(record.read_text())["quit"]


def test_renode_failing_without_output_is_reported_with_its_console(tmp_path, monkeypatch):
    _fake_renode(tmp_path, monkeypatch, "silent")
    with pytest.raises(ToolchainError, match="no harness output on netduinoplus2 under Renode, Renode exited with "
                                             "status 1") as info:
        run_renode(_elf(tmp_path / "fw"), get_board("netduinoplus2"), timeout=60)
    assert "There was an error executing command" in info.value.message


@pytest.mark.parametrize("log, problem", [
    ("TM FAULT HardFault cfsr=0x00000000 hfsr=0x40000000 pc=0x08000100 lr=0x0 sp=0x20000000\nTM EXIT code=3\n",
     "the firmware faulted on netduinoplus2 under Renode: FAULT HardFault"),
    (CANNED_LOG.replace("TM END status=0\nTM EXIT code=0", "TM ERROR sample=1 status=-2\nTM EXIT code=1"),
     "the firmware failed on netduinoplus2 under Renode (firmware exit code 1)"),
    (CANNED_LOG.replace("TM SAMPLE 1 exit=0 ticks=630", "TM SAMPLE 1 exit=zero ticks=630"), "protocol error"),
])
def test_firmware_failures_under_renode_are_errors(log, problem, tmp_path, monkeypatch):
    _fake_renode(tmp_path, monkeypatch, "ok", log)
    with pytest.raises(ToolchainError, match=re.escape(problem)):
        run_renode(_elf(tmp_path / "fw"), get_board("netduinoplus2"), timeout=60)


def test_write_renode_script_refuses_a_board_without_a_table(tmp_path):
    with pytest.raises(ToolchainError, match=r"no \[renode\] table"):
        write_renode_script(_elf(tmp_path), get_board("mps2-an386"))


needs_arm_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("cmake", "arm-none-eabi-gcc", "qemu-system-arm")),
    reason="needs cmake, arm-none-eabi-gcc and qemu-system-arm")


@pytest.mark.emulator
@needs_arm_tools
def test_tinyml_run_emulator_renode_end_to_end(tmp_path, monkeypatch, capsys):
    """`tinyml run --emulator renode` on netduinoplus2, with a fake `renode` that runs the ELF it is given in QEMU's
    netduinoplus2 (same STM32F405 image) and writes its UART to the script's file backend: build, script, runner,
    parse, bit-exact check and the Renode summary (ticks and time, no instructions) all take part."""
    import op_models
    from toolchain.export.tflite import convert_int8
    from toolchain.runners.qemu import qemu_command

    board = get_board("netduinoplus2")
    tflite = tmp_path / "dense.tflite"
    convert_int8(op_models.dense(), op_models.representative((24,)), tflite)
    _fake_renode(tmp_path, monkeypatch, "qemu")
    monkeypatch.setenv("FAKE_RENODE_QEMU", json.dumps(qemu_command(Path("x"), board)[:-2]))
    out = tmp_path / "run dir"
    code = main(["run", str(tflite), "--board", "netduinoplus2", "--emulator", "renode", "--samples", "2",
                 "--out", str(out), "--json", str(tmp_path / "run.json")])
    printed = capsys.readouterr().out
    assert code == 0, printed
    script = next(out.rglob(SCRIPT))
    assert (script.parent / "firmware.elf").exists()  # the .resc sits beside the ELF it loads
    assert "in Renode (platforms/cpus/stm32f4.repl" in printed and "not cycle-exact" in printed
    assert "SysTick ticks / inference" in printed and "instructions / inference" not in printed
    report = json.loads((tmp_path / "run.json").read_text())
    assert report["emulator"] == "renode" and report["bit_exact"] and report["instructions_mean"] is None
    assert report["ticks_mean"] > 0 and report["tick_hz"] == board.clock_hz
    assert report["samples_detail"][0]["instructions"] is None and report["samples_detail"][0]["ticks"] > 0


@pytest.mark.parametrize("name", ["disco-f746ng", "netduinoplus2"])
def test_a_renode_device_run_reports_ticks_and_time_never_instructions(name):
    """disco-f746ng has no [emulator] table (no -icount settings to turn ticks into instructions): a Renode run
    must not try; netduinoplus2 has them, and a Renode run still must not use them."""
    from types import SimpleNamespace

    from toolchain.firmware import FirmwareSizes
    from toolchain.pipeline.deploy import RENODE_COUNTS, DeviceRun
    from toolchain.runners.protocol import parse

    plan = SimpleNamespace(macs=24, arena_bytes=64, arena_regions={}, exits=[], reference="litert", target="dsp",
                           outputs=[SimpleNamespace(name="y", offset=0, bytes=2, dtype="int8", shape=(2,))])
    run = DeviceRun(get_board(name), plan, parse(CANNED_LOG), FirmwareSizes({"kernels": 100}, {"stack": 512}),
                    [], [], emulator="renode")
    s = run.summary()
    assert s["emulator"] == "renode" and s["instructions_mean"] is None and s["instructions_per_mac"] is None
    assert s["ticks_mean"] == round(((530 - 30) + (630 - 30)) / 2)  # markers (2 layers + 1) x 10 ticks removed
    assert s["tick_hz"] == 168_000_000 and s["estimated_latency_ms"] == pytest.approx(550 / 168e6 * 1e3)
    assert s["layer_counts"] == RENODE_COUNTS and s["latency_from"] == RENODE_COUNTS
    doc = run.to_json()
    assert [layer["ticks"] for layer in doc["layers"]] == [390, 100]
    assert all(layer["instructions"] is None for layer in doc["layers"])
    assert doc["samples_detail"][1]["ticks"] == 600 and doc["samples_detail"][1]["instructions"] is None
