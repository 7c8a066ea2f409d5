"""The board registry, read from boards/<name>/board.toml."""
from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from toolchain.errors import ToolchainError

BOARDS_DIR = Path(__file__).resolve().parents[1] / "boards"


@dataclass(frozen=True)
class Memory:
    origin: int
    size: int


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    cpu: str
    arch: str
    features: tuple[str, ...]
    clock_hz: int
    kernels: str
    flash: Memory
    ram: Memory
    qemu_machine: str | None
    systick_hz: int | None
    icount_shift: int | None
    cpi: float  # cycles per instruction for latency estimates from instruction counts (1.0 if uncalibrated)
    cpi_calibrated: bool
    path: Path

    @property
    def emulated(self) -> bool:
        return self.qemu_machine is not None

    def ticks_to_instructions(self, ticks: float) -> float:
        """Under QEMU -icount shift=s each instruction advances virtual time 2^s ns."""
        assert self.systick_hz and self.icount_shift is not None, f"{self.name} has no emulator settings"
        return ticks * 1e9 / ((1 << self.icount_shift) * self.systick_hz)

    def estimated_ms(self, instructions: float) -> float:
        return instructions * self.cpi / self.clock_hz * 1e3


def _load(path: Path) -> Board:
    try:
        d = tomllib.loads(path.read_text())
        emu = d.get("emulator", {})
        cal = d.get("calibration", {})
        return Board(
            name=d["name"], description=d.get("description", ""), cpu=d["cpu"], arch=d.get("arch", ""),
            features=tuple(d.get("features", ())), clock_hz=int(d["clock_hz"]), kernels=d.get("kernels", "ref"),
            flash=Memory(**d["memory"]["flash"]), ram=Memory(**d["memory"]["ram"]),
            qemu_machine=emu.get("qemu_machine"), systick_hz=emu.get("systick_hz"),
            icount_shift=emu.get("icount_shift"), cpi=float(cal.get("cpi", 1.0)), cpi_calibrated="cpi" in cal,
            path=path.parent,
        )
    except (KeyError, TypeError, tomllib.TOMLDecodeError) as exc:
        raise ToolchainError(f"{path} is not a valid board description: {exc}") from exc


@functools.cache
def all_boards(root: Path = BOARDS_DIR) -> dict[str, Board]:
    boards = {}
    for path in sorted(root.glob("*/board.toml")):
        board = _load(path)
        if board.name != path.parent.name:
            raise ToolchainError(f"{path}: name {board.name!r} differs from its folder {path.parent.name!r}")
        boards[board.name] = board
    return boards


def get_board(name: str) -> Board:
    boards = all_boards()
    if name not in boards:
        raise ToolchainError(f"unknown board {name!r}", f"known boards: {', '.join(boards)} (see `tinyml boards`)")
    return boards[name]
