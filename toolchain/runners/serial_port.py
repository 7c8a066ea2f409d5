"""A board's console UART on the host: find it, open it (pyserial: a device or a URL such as socket://host:port),
and read the harness's line protocol until its last line."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from toolchain.errors import ToolchainError

BAUD = 115200  # every harness: 115200 8N1
# USB vendor ids of the debug probes whose virtual COM port carries a board's console.
PROBE_VENDORS = {0x0483: "ST-LINK", 0x1366: "SEGGER J-Link", 0x0D28: "CMSIS-DAP (DAPLink)"}
URL_SCHEMES = ("socket://", "rfc2217://", "loop://")


@dataclass(frozen=True)
class PortInfo:
    device: str
    description: str


def probe_ports() -> list[PortInfo]:
    """Serial ports a debug probe on USB provides (ST-LINK, J-Link, DAPLink virtual COM ports)."""
    from serial.tools import list_ports

    return [PortInfo(p.device, f"{PROBE_VENDORS[p.vid]} {p.description or ''}".strip())
            for p in sorted(list_ports.comports(), key=lambda p: p.device) if p.vid in PROBE_VENDORS]


def resolve_port(port: str | None) -> str:
    """The port to read: `port` (checked to exist when it is a device path) or the one probe port found."""
    if port is not None:
        if port.startswith(URL_SCHEMES):
            return port
        if not os.path.exists(port):
            found = ", ".join(p.device for p in probe_ports()) or "none"
            raise ToolchainError(f"serial port {port} does not exist (probe ports found: {found})",
                                 "connect the board's USB cable, or pass its port with --port")
        return port
    found = probe_ports()
    if len(found) == 1:
        return found[0].device
    if not found:
        raise ToolchainError("no board's serial port found (no ST-LINK, J-Link or DAPLink virtual COM port)",
                             "connect the board's USB cable, or pass its port with --port /dev/ttyACM0")
    raise ToolchainError("several probe serial ports found: " + ", ".join(f"{p.device} ({p.description})"
                                                                          for p in found),
                         "choose one with --port")


def open_port(port: str, baud: int = BAUD):
    """The port, opened 8N1 with a short read timeout (reads poll); one-line error when it cannot be opened."""
    import serial

    try:
        return serial.serial_for_url(port, baudrate=baud, timeout=0.2)
    except (serial.SerialException, ValueError, OSError) as exc:
        raise ToolchainError(f"cannot open serial port {port}: {exc}",
                             "is the board connected and the port free (close other terminals on it)?") from None


def read_until_exit(ser, timeout: float, board: str, stop: str = "TM EXIT") -> str:
    """Everything the port delivers until a complete line starting with `stop` (the harness's last line), or the
    port closes (an emulator that exited); a ToolchainError after `timeout` seconds without it."""
    import serial

    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    partial = bytearray()  # the line being received: only complete lines are looked at, each once
    while time.monotonic() < deadline:
        try:
            # what has arrived, never more: a read of n bytes that meets the end of a socket:// stream (QEMU exits
            # after TM EXIT) raises and drops what it had read
            data = ser.read(1)
            if data and ser.in_waiting:
                data += ser.read(ser.in_waiting)
        except serial.SerialException:  # the other end closed
            break
        if not data:
            continue
        chunks.append(data)
        partial += data
        if b"\n" not in data:
            continue
        *lines, rest = bytes(partial).split(b"\n")
        partial = bytearray(rest)
        if any(line.strip().startswith(stop.encode()) for line in lines):
            break
    else:
        tail = b"".join(chunks).decode(errors="replace").strip().splitlines()[-3:]
        raise ToolchainError(f"no '{stop}' line from {board} within {timeout:g} s; last output: "
                             + (" | ".join(tail) if tail else "none"),
                             "check the port (--port) and the probe's reset; a large model may need a longer "
                             "--timeout")
    return b"".join(chunks).decode(errors="replace")
