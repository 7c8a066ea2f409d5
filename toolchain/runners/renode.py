"""Run a firmware image in Renode (optional: the user installs it from renode.io; we never download it), always
under a timeout.

The run is a Renode script (.resc) written next to the ELF, so the same run opens in Renode's GUI
(`renode firmware.resc`): it creates the machine from a platform file Renode ships (board.toml [renode]),
loads the ELF, writes the console UART to a file, pauses the machine at `TM EXIT` and starts. Headless, Renode
runs with its Monitor on the console (our pipe); the runner waits for `TM EXIT` in the UART file, then types
`quit`.

Figures: the harness reports SysTick ticks. The script sets SysTick to the board clock and the CPU to
[renode] performance_mips instructions per virtual microsecond, so ticks measure virtual time, not cycles
(no pipeline, cache or wait-state model): a Renode run reports ticks and time, never instructions.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from toolchain.boards import Board
from toolchain.errors import ToolchainError
from toolchain.runners.protocol import RunResult, check_finished, parse
from toolchain.tools import require_tool

RENODE_HINT = ("install Renode from https://renode.io (its Linux package or portable build; it is not in Debian or "
               "on PyPI) so that `renode` is on PATH, then rerun")
NOT_CYCLE_EXACT = ("Renode: SysTick ticks in virtual time (CPU at PerformanceInMips), not cycle-exact: "
                   "no instruction counts")
SCRIPT, UART_LOG, CONSOLE_LOG = "renode.resc", "renode-uart.log", "renode-console.log"
EXIT_LINE = "TM EXIT"
POLL_S = 0.05
QUIT_WAIT_S = 10.0  # for Renode to quit after `quit` before it is terminated


def renode_executable() -> str:
    """The path of `renode`, or a MissingToolError saying how to install it."""
    return require_tool("renode", RENODE_HINT)


def monitor_path(path: Path) -> str:
    """`path`, made absolute, as a Renode Monitor path token: `@` then the path with each space as `\\ `.

    The Monitor ends a path at whitespace or `;` and reads `\\ ` as a space; its script reader joins lines around
    `\"\"\"`. A path it cannot hold that way is refused rather than let it split or add a command."""
    text = str(Path(path).absolute())
    bad = sorted({c for c in text if c in ";\\" or (c.isspace() and c != " ") or not c.isprintable()})
    if bad or '"""' in text:
        shown = ", ".join(repr(c) for c in bad) or repr('"""')
        raise ToolchainError(f"the path {text!r} cannot be written into a Renode script (it holds {shown})",
                             "use a work directory (--out) whose path has no ';', backslash, tab, newline or "
                             "control character")
    return "@" + text.replace(" ", "\\ ")


def renode_script(elf: Path, board: Board, log_path: Path) -> str:
    """The .resc that runs `elf` on `board` under Renode with the console UART written to `log_path`."""
    if board.renode is None:
        raise ToolchainError(f"board {board.name} has no [renode] table")
    settings = board.renode
    uart = settings.uart
    lines = [
        f"# tinyml-toolchain: firmware on {board.name} under Renode (written by `tinyml run --emulator renode`).",
        f"# Open it in Renode (`renode {SCRIPT}`), or headless: renode --console --disable-xwt --plain "
        f"-e \"include @{SCRIPT}\"",
        f"# SysTick counts the board clock ({board.clock_hz} Hz) in virtual time: not cycle-exact.",
        f":name: tinyml {board.name}",
        "",
        "using sysbus",
        f'mach create "{board.name}"',
        f"machine LoadPlatformDescription @{settings.platform}",
        *([f"sysbus.cpu PerformanceInMips {settings.performance_mips}"] if settings.performance_mips else []),
        f"sysbus.nvic Frequency {board.clock_hz}",
        "# the harness ends with a reset request (emulator builds) or halts: stop the machine either way",
        "sysbus.nvic PauseInsteadOfReset true",
        f"sysbus LoadELF {monitor_path(elf)}",
        f"{uart} CreateFileBackend {monitor_path(log_path)} true",
        f'{uart} AddLineHook "{EXIT_LINE}" "machine.PauseAndRequestEmulationPause()"',
        f"showAnalyzer {uart}",
        "start",
        "",
    ]
    return "\n".join(lines)


def renode_command(script_path: Path) -> list[str]:
    """Renode headless (no GUI), its Monitor on stdin/stdout (plain text), running `script_path`."""
    return [renode_executable(), "--console", "--disable-xwt", "--plain", "-e", f"include {monitor_path(script_path)}"]


def write_renode_script(elf: Path, board: Board, work_dir: Path | None = None) -> Path:
    """Write the .resc for `elf` (UART to renode-uart.log) into `work_dir` (default: beside the ELF); its path."""
    work = Path(work_dir or Path(elf).parent)
    work.mkdir(parents=True, exist_ok=True)
    script = work / SCRIPT
    script.write_text(renode_script(Path(elf).absolute(), board, (work / UART_LOG).absolute()), encoding="utf-8")
    return script


def _until_exit(log: str) -> str | None:
    """The UART text up to and including the first complete `TM EXIT` line; None before there is one."""
    if EXIT_LINE not in log:
        return None
    start = 0
    for line in log.splitlines(keepends=True):
        start += len(line)
        if line.strip().startswith(EXIT_LINE) and line.endswith(("\n", "\r")):
            return log[:start]
    return None


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return ""


class _Growing:
    """A file another process appends to, read as it grows (missing: empty so far)."""

    def __init__(self, path: Path):
        self.path, self.data = path, b""

    def text(self) -> str:
        try:
            with open(self.path, "rb") as f:
                f.seek(len(self.data))
                self.data += f.read()
        except FileNotFoundError:
            pass
        return self.data.decode(errors="replace")


def _stop(proc: subprocess.Popen) -> None:
    """Ask Renode to quit on its Monitor; else terminate, then kill, its process group (`renode` may be a launcher
    script with the runtime as its child)."""
    try:
        proc.stdin.write(b"quit\n")
        proc.stdin.close()
    except OSError:  # it has gone already (a broken pipe)
        pass
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        try:
            proc.wait(QUIT_WAIT_S)
            return
        except subprocess.TimeoutExpired:
            continue


def run_renode(elf: Path, board: Board, timeout: float = 120.0, work_dir: Path | None = None) -> RunResult:
    """Run `elf` on `board` in Renode until the harness's `TM EXIT` (or `timeout` seconds, Renode's start-up
    included) and parse its UART output, as `run_qemu` does."""
    if board.renode is None:
        raise ToolchainError(f"board {board.name} has no [renode] table: Renode cannot run it")
    script = write_renode_script(elf, board, work_dir)
    log_path, console_path = script.parent / UART_LOG, script.parent / CONSOLE_LOG
    cmd = renode_command(script)
    log_path.unlink(missing_ok=True)  # Renode would move an old one aside (renode-uart.log.1) and write a new one
    deadline = time.monotonic() + timeout
    uart = _Growing(log_path)
    with open(console_path, "wb") as console:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=console, stderr=subprocess.STDOUT,
                                cwd=script.parent, start_new_session=True)
        try:
            log = None
            while log is None and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(POLL_S)
                log = _until_exit(uart.text())
        finally:
            status = proc.poll()
            _stop(proc)
    text = uart.text()
    log = log or _until_exit(text)
    if log is None and status is None:
        tail = (text.strip() or _read(console_path).strip()).splitlines()[-3:]
        raise ToolchainError(
            f"the firmware did not finish within {timeout:g} s on {board.name} under Renode (hung, or the script "
            f"failed?); last output: " + (" | ".join(tail) if tail else "none"),
            f"a model that large may need a longer --timeout; otherwise see Renode's console in {console_path}")
    log = log or text
    exited = "" if status is None else f", Renode exited with status {status}"
    if "TM BEGIN" not in log and "TM FAULT" not in log:
        raise ToolchainError(f"no harness output on {board.name} under Renode{exited} (see {console_path}):\n"
                             + _read(console_path)[-2000:])
    return check_finished(parse(log), f"{board.name} under Renode",
                          "" if status is None else f"Renode status {status}, ")
