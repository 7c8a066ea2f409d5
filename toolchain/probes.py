"""Debug probes that put a firmware image on a board and start it: OpenOCD, pyOCD, or any GDB server.

Each probe turns (ELF, board, options) into the command lines to run, checked before any build work: the tool is
installed, the board names the probe's config, the options are well formed. Nothing reaches a shell: every command
is an argument list, and what goes into a probe's own command language (OpenOCD's Tcl, GDB's commands) is a checked
path or number.
"""
from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from toolchain.boards import Board
from toolchain.errors import ToolchainError
from toolchain.tools import require_tool

PROBES = ("openocd", "pyocd", "gdb")
OPENOCD_HINT = "apt-get install openocd (or run `make setup`)"
GDB_HINT = "apt-get install gdb-multiarch (or run `make setup`)"
PYOCD_HINT = "pip install 'tinyml-toolchain[probes]' (pyOCD) into the toolchain's environment"
# GDB server addresses: host:port, host a name or an IPv4 address (no spaces, quotes or newlines reach GDB).
_SERVER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*:\d{1,5}$")
_PROBE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_XPSR_THUMB = 1 << 24  # the reset value of xPSR: the T bit
DEFAULT_GDB_RESET = "reset halt"  # OpenOCD's and pyOCD's gdbserver; QEMU's gdbstub ignores it (unknown command)


@dataclass(frozen=True)
class ProbeOptions:
    gdb_server: str | None = None  # host:port of a running GDB server (--probe gdb)
    gdb_reset: str = DEFAULT_GDB_RESET  # monitor command that resets and halts the target before `load`; "" none
    probe_id: str | None = None  # serial number of the probe when several are connected


def default_probe(board: Board) -> str:
    """The board's [flash] method; a board without one (an emulator-only board) is flashed through a GDB server."""
    return board.flashing.method if board.flashing else "gdb"


def check_probe(probe: str, board: Board, options: ProbeOptions) -> None:
    """One-line errors, before any build work: unknown probe, missing tool, missing board config, bad options."""
    if probe not in PROBES:
        raise ToolchainError(f"unknown probe {probe!r}", f"use one of: {', '.join(PROBES)}")
    if options.probe_id is not None and not _PROBE_ID.match(options.probe_id):
        raise ToolchainError(f"--probe-id {options.probe_id!r} is not a probe serial number",
                             "letters, digits and . _ : - only (e.g. 0669FF373233424E43153244)")
    if probe == "openocd":
        require_tool("openocd", OPENOCD_HINT)
        if not (board.flashing and board.flashing.openocd):
            raise ToolchainError(f"board {board.name} names no OpenOCD config ([flash] openocd in its board.toml)",
                                 "use --probe pyocd or --probe gdb with a GDB server you start")
    elif probe == "pyocd":
        pyocd_tool()
        if not (board.flashing and board.flashing.pyocd):
            raise ToolchainError(f"board {board.name} names no pyOCD target ([flash] pyocd in its board.toml)",
                                 "use --probe openocd or --probe gdb")
    else:
        require_tool("gdb-multiarch", GDB_HINT)
        if options.gdb_server is None:
            raise ToolchainError("--probe gdb needs --gdb-server HOST:PORT (a GDB server you started: OpenOCD, "
                                 "pyocd gdbserver, JLinkGDBServer, QEMU -gdb)", "pass --gdb-server localhost:3333")
        if not _SERVER.match(options.gdb_server) or int(options.gdb_server.rsplit(":", 1)[1]) > 65535:
            raise ToolchainError(f"--gdb-server {options.gdb_server!r} is not HOST:PORT", "e.g. localhost:3333")
        if "\n" in options.gdb_reset or len(options.gdb_reset) > 64:
            raise ToolchainError("--gdb-reset must be one monitor command (at most 64 characters)",
                                 f"e.g. '{DEFAULT_GDB_RESET}', or '' for none")


def pyocd_tool() -> list[str]:
    """How to run pyOCD: its console script beside our interpreter, else on PATH."""
    beside = Path(sys.executable).with_name("pyocd")
    if beside.is_file():
        return [str(beside)]
    return [require_tool("pyocd", PYOCD_HINT)]


def openocd_args(board: Board) -> list[str]:
    """OpenOCD's configuration arguments for the board: `-f` each config of [flash] openocd, with the transport
    ([flash] transport) selected after the interface's config."""
    args: list[str] = []
    for cfg in board.flashing.openocd.split():
        args += ["-f", cfg]
        if cfg.startswith("interface/") and board.flashing.transport:
            args += ["-c", f"transport select {board.flashing.transport}"]
    return args


def _tcl_path(elf: Path) -> str:
    """The path as one OpenOCD (Tcl) word: braced, so spaces and $ [ ] stay literal; braces themselves refused."""
    text = str(elf)
    if any(c in text for c in "{}\\\n\r"):
        raise ToolchainError(f"OpenOCD cannot be given the path {text!r} (braces, backslashes or newlines)",
                             "use an --out directory whose path has none of them")
    return "{" + text + "}"


def boot_words(elf: Path) -> tuple[int, int]:
    """The image's initial stack pointer and reset handler: the first two words of its vector table."""
    from toolchain.stackbound import read_elf

    words = read_elf(elf).section(".vectors").data[:8]
    if len(words) < 8:
        raise ToolchainError(f"{elf} has no vector table", "rebuild the firmware")
    return int.from_bytes(words[:4], "little"), int.from_bytes(words[4:], "little")


def flash_commands(probe: str, elf: Path, board: Board, options: ProbeOptions) -> list[list[str]]:
    """The command lines that program `elf`, reset the core and leave it running (run in order)."""
    elf = Path(elf).resolve()
    if probe == "openocd":
        select = ["-c", f"adapter serial {options.probe_id}"] if options.probe_id else []
        return [[require_tool("openocd", OPENOCD_HINT), *select, *openocd_args(board),
                 "-c", f"program {_tcl_path(elf)} verify reset exit"]]
    if probe == "pyocd":
        select = ["--uid", options.probe_id] if options.probe_id else []
        return [[*pyocd_tool(), "flash", "--target", board.flashing.pyocd, *select, str(elf)]]  # resets after
    sp, reset = boot_words(elf)
    # load, then start the image as the core's reset would (sp and pc from the vector table, xPSR's T bit) and
    # detach, which leaves it running: this works on a GDB server whose reset command is unknown or different.
    steps = ["set pagination off", "set confirm off", f"target extended-remote {options.gdb_server}",
             *([f"monitor {options.gdb_reset}"] if options.gdb_reset else []), "load",
             f"set $sp = {sp:#x}", f"set $pc = {reset:#x}", f"set $xpsr = {_XPSR_THUMB:#x}", "detach"]
    return [[require_tool("gdb-multiarch", GDB_HINT), "-nx", "-batch",
             *[arg for step in steps for arg in ("-ex", step)], str(elf)]]


def run_probe(commands: list[list[str]], probe: str, board: Board, timeout: float = 180.0) -> None:
    """Run the probe's commands; a failure or a hang is one error with the tool's last lines."""
    for cmd in commands:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise ToolchainError(f"{probe} did not finish flashing {board.name} within {timeout:g} s",
                                 "is the probe connected and the board powered?") from None
        log = (proc.stdout + proc.stderr).strip()
        failed = proc.returncode != 0 or (probe == "gdb" and _gdb_failed(log))
        if failed:
            tail = " | ".join(log.splitlines()[-4:]) or "no output"
            raise ToolchainError(f"{probe} failed to flash {board.name} (status {proc.returncode}): {tail}",
                                 _probe_fix(probe, board))


def _gdb_failed(log: str) -> bool:
    """GDB in batch mode goes on after a failed command: a connection or load failure shows only in its output."""
    return bool(re.search(r"(Connection refused|Connection timed out|could not connect|Remote communication error"
                          r"|Load failed|Ignoring packet error|not responding)", log, re.IGNORECASE))


def _probe_fix(probe: str, board: Board) -> str:
    if probe == "pyocd" and board.flashing and board.flashing.pyocd:
        return (f"is the probe connected? pyOCD may need the target's pack once: pyocd pack install "
                f"{board.flashing.pyocd}")
    if probe == "gdb":
        return "is the GDB server running and listening at --gdb-server?"
    return "is the probe connected (lsusb), the board powered, and no other debugger attached?"

