"""Run a firmware image in qemu-system-arm, deterministically (-icount), always under a timeout."""
from __future__ import annotations

import subprocess
from pathlib import Path

from toolchain.boards import Board
from toolchain.errors import ToolchainError
from toolchain.runners.protocol import RunResult, check_finished, parse
from toolchain.tools import QEMU_HINT, require_tool


# The firmware is built from an untrusted model: it gets no way into the host. No semihosting (it would
# let the guest open host files and run host commands); the run ends by a guest reset request, which
# -no-reboot turns into QEMU exiting; seccomp forbids QEMU itself to spawn processes or gain privileges.
SANDBOX = ["-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"]


def qemu_command(elf: Path, board: Board) -> list[str]:
    return [
        require_tool("qemu-system-arm", QEMU_HINT),
        "-M", board.qemu_machine, "-nographic", "-monitor", "none", "-serial", "stdio",
        "-no-reboot", *SANDBOX,
        "-icount", f"shift={board.icount_shift},align=off,sleep=off",
        "-kernel", str(elf),
    ]


def run_qemu(elf: Path, board: Board, timeout: float = 120.0, extra_args: list[str] | None = None) -> RunResult:
    if not board.emulated:
        raise ToolchainError(f"board {board.name} has no emulator")
    cmd = qemu_command(elf, board) + list(extra_args or [])
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stdout or b"").decode(errors="replace").strip().splitlines()[-3:]
        raise ToolchainError(
            f"the firmware did not finish within {timeout:g} s on {board.name} (hung?); last output: "
            + (" | ".join(tail) if tail else "none"),
            "a model that large may need a longer --timeout; otherwise report the log") from None
    log = proc.stdout.decode(errors="replace")
    if "TM BEGIN" not in log and "TM FAULT" not in log:
        raise ToolchainError(f"QEMU exited with status {proc.returncode} and no harness output on {board.name}:\n"
                             + proc.stderr.decode(errors="replace")[-2000:])
    result = check_finished(parse(log), board.name, f"QEMU status {proc.returncode}, ")
    if proc.returncode != 0:
        raise ToolchainError(f"QEMU exited with status {proc.returncode} on {board.name} after the firmware finished")
    return result
