"""Host side of the EEMBC runner mode (docs/PROTOCOL.md, "EEMBC runner mode"): speaks the MLPerf Tiny / EEMBC
EnergyRunner performance-mode protocol to a firmware built with `--harness eembc`, over any pyserial port: a board's
serial device (`/dev/ttyACM0`) or QEMU's UART on a socket (`socket://127.0.0.1:PORT`).

Each command is at most 80 characters and ends with '%'; the device answers with lines ending "\\r\\n", the last one
"m-ready"; an "e-[...]" line is an error. Everything the device sends is untrusted: lines are bounded, numbers
parsed strictly."""
from __future__ import annotations

import re
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from toolchain.boards import Board
from toolchain.errors import ToolchainError
from toolchain.runners.qemu import qemu_command

BAUD = 115200
COMMAND_MAX = 80  # characters before the '%'
LINE_MAX = 4096  # a longer line is not from our firmware
PROFILES = ("kws01", "vww01", "ic01", "ad01")
_LAP = re.compile(r"m-lap-us-(\d+)")
_RESULTS = re.compile(r"m-results-\[([^\]]*)\]")
_QRESULTS = re.compile(r"m-qresults-\[([^\]]*)\]")


@dataclass(frozen=True)
class Inference:
    """What `infer N W` reported: the two timestamps around the N timed inferences (microseconds on the device's
    clock; under QEMU -icount an instruction count, not time), the dequantized results, N and W."""
    laps_us: tuple[int, int]
    results: tuple[float, ...]
    n: int
    warmup: int

    @property
    def elapsed_us(self) -> int:
        return self.laps_us[1] - self.laps_us[0]

    @property
    def us_per_inference(self) -> float:
        return self.elapsed_us / self.n


def host_bytes(profile: str, values: np.ndarray) -> bytes:
    """One input as the EEMBC host sends it: kws01 the int8 values; vww01/ic01 uint8 pixels (the device subtracts
    128: pass the model's int8 input); ad01 little-endian float32 values (the device quantizes them)."""
    if profile not in PROFILES:
        raise ToolchainError(f"unknown EEMBC profile {profile!r}", f"choose one of {', '.join(PROFILES)}")
    values = np.asarray(values).reshape(-1)
    if profile == "ad01":
        return values.astype("<f4").tobytes()
    if values.dtype != np.int8:
        raise ToolchainError(f"{profile} input must be the model's int8 values, not {values.dtype}")
    if profile == "kws01":
        return values.tobytes()
    return (values.astype(np.int16) + 128).astype(np.uint8).tobytes()


def _floats(text: str, what: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",")) if text else ()
    except ValueError:
        raise ToolchainError(f"the device sent malformed {what}: [{text[:200]}]") from None


class EembcDevice:
    """A device in the EEMBC runner mode on a pyserial URL. `timeout`: seconds a command may take to answer (an
    `infer` gets its own). Use as a context manager, or call close()."""

    def __init__(self, url: str, timeout: float = 10.0, baudrate: int = BAUD):
        import serial

        try:
            self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=0.05)
        except (serial.SerialException, ValueError) as exc:
            raise ToolchainError(f"cannot open {url}: {exc}") from None
        self.url = url
        self.timeout = timeout
        self._pending = b""

    @classmethod
    def on_port(cls, port, url: str, timeout: float = 10.0) -> EembcDevice:
        """A device on a port already open (e.g. before its board was reset, so no start-up line is lost); closing
        the device closes the port."""
        device = cls.__new__(cls)
        device._port, device.url, device.timeout, device._pending = port, url, timeout, b""
        return device

    def close(self) -> None:
        self._port.close()

    def __enter__(self) -> EembcDevice:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _line(self, deadline: float, waiting_for: str) -> str:
        while b"\n" not in self._pending:
            if len(self._pending) > LINE_MAX:
                raise ToolchainError(f"{self.url}: a line of over {LINE_MAX} bytes without an end (not our firmware?)")
            if time.monotonic() > deadline:
                tail = self._pending.decode(errors="replace")[-200:]
                raise ToolchainError(f"{self.url}: no answer to {waiting_for} in time"
                                     + (f" (partial line: {tail!r})" if tail else ""),
                                     "is the EEMBC firmware running on that port, at 115200 baud?")
            self._pending += self._port.read(max(1, min(self._port.in_waiting, LINE_MAX)))
        line, self._pending = self._pending.split(b"\n", 1)
        return line.decode(errors="replace").rstrip("\r")

    def read_until_ready(self, waiting_for: str = "m-ready", timeout: float | None = None) -> list[str]:
        """Lines up to (not including) the next "m-ready"."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        lines: list[str] = []
        while True:
            line = self._line(deadline, waiting_for)
            if line == "m-ready":
                return lines
            if line.startswith("TM FAULT"):
                raise ToolchainError(f"{self.url}: the firmware faulted: {line}")
            lines.append(line)

    def send(self, command: str, timeout: float | None = None, check: bool = True, limit: bool = True) -> list[str]:
        """Send one command (without its '%'); its reply lines up to "m-ready". `check`: an e- line raises.
        `limit`: refuse a command over 80 characters (False: send it anyway, to see the device refuse it)."""
        if "%" in command or (limit and len(command) > COMMAND_MAX):
            raise ToolchainError(f"an EEMBC command is at most {COMMAND_MAX} characters without '%': {command[:40]!r}")
        self._port.write(command.encode("ascii") + b"%")
        lines = self.read_until_ready(f"`{command[:40]}`", timeout)
        errors = [line for line in lines if line.startswith("e-")]
        if check and errors:
            raise ToolchainError(f"{self.url}: `{command[:40]}` failed: {errors[0]}")
        return lines

    def wait_boot(self, timeout: float | None = None) -> list[str]:
        """The start-up lines (m-timestamp-mode-performance, m-lap-us-..., m-init-done) up to the first m-ready."""
        return self.read_until_ready("the start-up's m-ready", timeout)

    def name(self) -> str:
        return self._field(self.send("name"), "m-name-", "name")

    def profile(self) -> str:
        """The benchmark the firmware answers for: kws01, vww01, ic01 or ad01 (m-model-[...])."""
        return self._field(self.send("profile"), "m-model-", "profile").strip("[]")

    def timestamp(self) -> int:
        laps = [int(m.group(1)) for line in self.send("timestamp") if (m := _LAP.fullmatch(line))]
        if len(laps) != 1:
            raise ToolchainError(f"{self.url}: `timestamp` gave no m-lap-us- line")
        return laps[0]

    def load(self, data: bytes) -> None:
        """`db load N`, then the bytes as hex in `db` lines of at most 80 characters; the last must say
        m-load-done."""
        if not data:
            raise ToolchainError("nothing to load")
        self.send(f"db load {len(data)}")
        per_line = (COMMAND_MAX - len("db ")) // 2
        for start in range(0, len(data), per_line):
            lines = self.send("db " + data[start:start + per_line].hex())
            done = "m-load-done" in lines
            if done != (start + per_line >= len(data)):
                raise ToolchainError(f"{self.url}: m-load-done {'early' if done else 'missing'} after "
                                     f"{min(start + per_line, len(data))} of {len(data)} bytes")

    def infer(self, n: int = 1, warmup: int = 0, timeout: float | None = None) -> Inference:
        """`infer N W`: W warm-up inferences, then N timed between two m-lap-us- lines; the m-results-[...]."""
        if n < 1 or warmup < 0:
            raise ToolchainError(f"infer needs n >= 1 and warmup >= 0, not {n} and {warmup}")
        lines = self.send(f"infer {n} {warmup}", timeout=timeout)
        laps = [int(m.group(1)) for line in lines if (m := _LAP.fullmatch(line))]
        results = [m.group(1) for line in lines if (m := _RESULTS.fullmatch(line))]
        if len(laps) != 2 or len(results) != 1 or "m-infer-done" not in lines:
            raise ToolchainError(f"{self.url}: `infer {n} {warmup}` answered without two m-lap-us- lines, "
                                 f"m-infer-done and m-results: {' | '.join(lines)[:300]}")
        return Inference((laps[0], laps[1]), _floats(results[0], "results"), n, warmup)

    def results(self) -> tuple[float, ...]:
        found = [m.group(1) for line in self.send("results") if (m := _RESULTS.fullmatch(line))]
        if len(found) != 1:
            raise ToolchainError(f"{self.url}: `results` gave no m-results line")
        return _floats(found[0], "results")

    def quantized_results(self) -> tuple[int, ...]:
        """Our extension `qresults`: the int8 output values behind the last results."""
        found = [m.group(1) for line in self.send("qresults") if (m := _QRESULTS.fullmatch(line))]
        if len(found) != 1:
            raise ToolchainError(f"{self.url}: `qresults` gave no m-qresults line")
        try:
            return tuple(int(v) for v in found[0].split(","))
        except ValueError:
            raise ToolchainError(f"{self.url}: malformed m-qresults: [{found[0][:200]}]") from None

    def _field(self, lines: list[str], prefix: str, command: str) -> str:
        for line in lines:
            if line.startswith(prefix):
                return line[len(prefix):]
        raise ToolchainError(f"{self.url}: `{command}` gave no {prefix}... line: {' | '.join(lines)[:200]}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def qemu_eembc_command(elf: Path, board: Board, port: int) -> list[str]:
    """`qemu_command` (same sandbox, -icount and -no-reboot) with the UART on a TCP socket on 127.0.0.1:`port`;
    QEMU waits for the connection before it starts the guest, so nothing the firmware prints is lost."""
    cmd = qemu_command(elf, board)
    at = cmd.index("-serial")
    cmd[at + 1] = f"tcp:127.0.0.1:{port},server=on,wait=on"
    return cmd


@contextmanager
def qemu_eembc(elf: Path, board: Board, timeout: float = 10.0) -> Iterator[EembcDevice]:
    """Start an EEMBC-mode image in QEMU and yield the connected device, its start-up lines read; QEMU is killed
    on the way out, whatever happens."""
    if not board.emulated:
        raise ToolchainError(f"board {board.name} has no emulator")
    port = _free_port()
    proc = subprocess.Popen(qemu_eembc_command(Path(elf), board, port), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    device = None
    try:
        deadline = time.monotonic() + timeout
        while device is None:
            try:
                device = EembcDevice(f"socket://127.0.0.1:{port}", timeout=timeout)
            except ToolchainError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode(errors="replace")[-1000:] if proc.poll() is not None else ""
                    raise ToolchainError(f"QEMU did not open its UART socket on port {port} for {board.name}"
                                         + (f": {err}" if err else "")) from None
                time.sleep(0.05)
        device.wait_boot()
        yield device
    finally:
        if device is not None:
            device.close()
        proc.kill()
        proc.wait()
        proc.stderr.close()
