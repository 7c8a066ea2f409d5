"""The board registry, read from boards/<name>/board.toml.

board.toml is the only place a board's facts are written: CMake reads the same file
(cmake/board_config.cmake, a line-based reader of the subset described in boards/README.md) for the
compiler flags, the definitions (name, clocks, UART) and the sources, and checks the same rules as
`_load` here.
"""
from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from toolchain.errors import ToolchainError
from toolchain.paths import BOARDS_DIR

FEATURES = ("dsp", "fpu", "mve", "trustzone")
# The kernel paths (firmware/kernels/<path>, compiler TARGETS) and what each needs of the core. `cmsis-nn` calls a
# user's CMSIS-NN checkout (CMSIS_NN_ROOT), whose own build picks its DSP/MVE code from the same -mcpu.
KERNEL_PATH_FEATURES = {"ref": (), "dsp": ("dsp",), "mve": ("dsp", "mve"), "cmsis-nn": ()}
MAX_IRQS = 496  # external interrupts an Armv7-M/Armv8-M NVIC can have

# key -> (type, required) for each table of board.toml; `features` is a list of strings.
_SCHEMA: dict[str, dict[str, tuple[type, bool]]] = {
    "": {"name": (str, True), "description": (str, False), "cpu": (str, True), "arch": (str, False),
         "features": (list, True), "fpu": (str, True), "clock_hz": (int, True), "num_irqs": (int, True),
         "kernels": (str, True), "memory": (dict, True), "uart": (dict, True), "emulator": (dict, False),
         "flash": (dict, False), "calibration": (dict, False), "renode": (dict, False)},
    "memory": {"flash": (dict, True), "ram": (dict, True), "extra": (dict, False)},
    "memory.flash": {"origin": (int, True), "size": (int, True)},
    "memory.ram": {"origin": (int, True), "size": (int, True)},
    "memory.extra.*": {"origin": (int, True), "size": (int, True)},
    "uart": {"driver": (str, True), "base": (int, True), "clock_hz": (int, True)},
    "emulator": {"qemu_machine": (str, True), "systick_hz": (int, True), "icount_shift": (int, True)},
    "flash": {"method": (str, True), "openocd": (str, False), "transport": (str, False), "pyocd": (str, False),
              "serial": (str, False), "platformio": (str, False)},
    "calibration": {"cpi": (float, True)},
    "renode": {"platform": (str, True), "uart": (str, True), "performance_mips": (int, False)},
}
# How an image reaches a real board ([flash] method): OpenOCD with its board/target config, pyOCD with its target
# name, or a GDB server the user already runs.
FLASH_METHODS = ("openocd", "pyocd", "gdb")
# What runs a board's firmware without the board: QEMU ([emulator]) or, optionally, Renode ([renode]).
EMULATORS = ("qemu", "renode")
# [renode]: a platform file Renode ships (relative to its install: platforms/cpus/<soc>.repl or platforms/boards/...)
# and the Monitor name of the console UART; both reach a Renode script, so only plain names pass.
_RENODE_PLATFORM = re.compile(r"platforms/[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*\.repl")
_RENODE_PERIPHERAL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")

# An extra RAM region's name: it names the arena's C array (tm_arena_<name>), its section (.tm_arena.<name>) and, in
# upper case, the linker's MEMORY region; the same rule as the compiler's (driver.check_regions).
_REGION_NAME = re.compile(r"[a-z][a-z0-9_]{0,15}")
RESERVED_REGION_NAMES = ("flash", "ram")

_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", list: "an array", dict: "a table"}


@dataclass(frozen=True)
class Memory:
    origin: int
    size: int


@dataclass(frozen=True)
class Region:
    """A RAM region the arena may use: "ram" (the main RAM: stack, .data, .bss) or an extra one of
    [memory.extra.<name>] (only what the linker script places there: the arena's part `.tm_arena.<name>`)."""
    name: str
    origin: int
    size: int

    @property
    def end(self) -> int:
        return self.origin + self.size


@dataclass(frozen=True)
class Uart:
    driver: str  # firmware/drivers/uart_<driver>.c
    base: int
    clock_hz: int  # the UART's peripheral clock


@dataclass(frozen=True)
class Flashing:
    """[flash]: how a real board is programmed (the probe's config names) and where its console appears."""
    method: str  # FLASH_METHODS
    openocd: str | None = None  # OpenOCD configs (each passed with -f), e.g. "board/st_nucleo_l4.cfg"
    transport: str | None = None  # OpenOCD transport selected after the interface config, e.g. "dapdirect_swd"
    pyocd: str | None = None  # pyOCD target name, e.g. "stm32l4r5zitx"
    serial: str | None = None  # where the console UART shows up on the host (a hint, e.g. the ST-LINK VCP)
    platformio: str | None = None  # PlatformIO board id, e.g. "nucleo_l4r5zi"

    def describe(self) -> str:
        tool = {"openocd": self.openocd, "pyocd": self.pyocd}.get(self.method)
        return f"{self.method} {tool}" if tool else self.method


@dataclass(frozen=True)
class RenodeSettings:
    """[renode]: how Renode (optional, not installed by us) runs the board: its platform file, the console UART's
    peripheral name, and the instructions per virtual microsecond its CPU executes (None: the platform's own)."""
    platform: str  # e.g. "platforms/cpus/stm32f4.repl", relative to Renode's install
    uart: str  # e.g. "sysbus.usart1": the peripheral at [uart] base
    performance_mips: int | None = None  # `cpu PerformanceInMips`


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    cpu: str
    arch: str
    features: tuple[str, ...]
    fpu: str  # GCC -mfpu (with -mfloat-abi=hard), "none" (soft float) or "auto" (implied by -mcpu)
    clock_hz: int
    num_irqs: int
    kernels: str
    flash: Memory
    ram: Memory
    uart: Uart
    qemu_machine: str | None
    systick_hz: int | None
    icount_shift: int | None
    cpi: float  # cycles per instruction for latency estimates from instruction counts (1.0 if uncalibrated)
    cpi_calibrated: bool
    path: Path
    extra_ram: tuple[Region, ...] = ()  # [memory.extra.<name>], in board.toml's order (fastest first)
    flashing: Flashing | None = None  # [flash]: real boards; None for a board that only runs emulated
    renode: RenodeSettings | None = None  # [renode]: Renode can run it (`tinyml run --emulator renode`)

    @property
    def ram_regions(self) -> tuple[Region, ...]:
        """The RAM regions, fastest first: the main RAM ("ram"), then the extra ones."""
        return (Region("ram", self.ram.origin, self.ram.size), *self.extra_ram)

    def region(self, name: str) -> Region:
        """The RAM region `name` ("ram" or an extra one), or a one-line error listing them."""
        for region in self.ram_regions:
            if region.name == name:
                return region
        raise ToolchainError(f"board {self.name} has no memory region {name!r}",
                             f"its RAM regions: {', '.join(r.name for r in self.ram_regions)} (see `tinyml boards`)")

    @property
    def emulated(self) -> bool:
        return self.qemu_machine is not None

    def check_emulated(self, emulator: str = "qemu") -> None:
        """A one-line error, before any work, unless `emulator` (qemu: [emulator]; renode: [renode]) runs this
        board."""
        if emulator not in EMULATORS:
            raise ToolchainError(f"unknown emulator {emulator!r}", f"choose one of: {', '.join(EMULATORS)}")
        if emulator == "renode":
            if self.renode is None:
                raise ToolchainError(f"board {self.name} has no [renode] table: Renode cannot run it",
                                     "run with --emulator renode on: " + ", ".join(
                                         b.name for b in all_boards().values() if b.renode is not None))
            return
        if not self.emulated:
            how = (f"flash it (`tinyml flash MODEL --board {self.name}`, {self.flashing.describe()})"
                   if self.flashing else "it has no [emulator] table")
            raise ToolchainError(f"board {self.name} is not emulated by QEMU: {how}",
                                 "or run on an emulated board: " + ", ".join(
                                     b.name for b in all_boards().values() if b.emulated)
                                 + ("; Renode runs it: --emulator renode" if self.renode else ""))

    def ticks_to_instructions(self, ticks: float) -> float:
        """Under QEMU -icount shift=s each instruction advances virtual time 2^s ns."""
        assert self.systick_hz and self.icount_shift is not None, f"{self.name} has no emulator settings"
        return ticks * 1e9 / ((1 << self.icount_shift) * self.systick_hz)

    @property
    def kernel_paths(self) -> tuple[str, ...]:
        """The kernel paths this board's core can run (its default, `kernels`, among them)."""
        return tuple(k for k, needs in KERNEL_PATH_FEATURES.items() if set(needs) <= set(self.features))

    def check_kernels(self, kernels: str) -> None:
        """A one-line error unless this board's core runs kernel path `kernels`."""
        if kernels not in KERNEL_PATH_FEATURES:
            raise ToolchainError(f"unknown kernel path {kernels!r}",
                                 f"choose one of: {', '.join(KERNEL_PATH_FEATURES)}")
        missing = [f for f in KERNEL_PATH_FEATURES[kernels] if f not in self.features]
        if missing:
            raise ToolchainError(f"board {self.name} ({self.cpu}) has no {'/'.join(m.upper() for m in missing)} "
                                 f"extension: it cannot run the {kernels} kernels",
                                 f"use --kernels {', '.join(self.kernel_paths[:-1])} or {self.kernel_paths[-1]}")

    def estimated_ms(self, instructions: float) -> float:
        return instructions * self.cpi / self.clock_hz * 1e3


def _check_table(table: dict, section: str) -> list[str]:
    """Every problem of one table against _SCHEMA: missing, unknown or mistyped keys."""
    where = f"in [{section}]" if section else "at the top level"
    schema = _SCHEMA[section]
    problems = [f"unknown key {key!r} {where}" for key in table if key not in schema]
    for key, (kind, required) in schema.items():
        if key not in table:
            if required:
                problems.append(f"no {key!r} {where}")
            continue
        value = table[key]
        ok = (isinstance(value, (int, float)) if kind is float else isinstance(value, kind))
        if isinstance(value, bool) or not ok:
            problems.append(f"{key!r} {where} must be {_KIND_NAMES[kind]}, not {value!r}")
        elif kind is dict and section == "memory" and key == "extra":
            for name, region in value.items():
                if not isinstance(region, dict):
                    problems.append(f"[memory.extra.{name}] must be a table, not {region!r}")
                else:
                    problems += [p.replace("[memory.extra.*]", f"[memory.extra.{name}]")
                                 for p in _check_table(region, "memory.extra.*")]
        elif kind is dict:
            problems += _check_table(value, f"{section}.{key}" if section else key)
    return problems


def _check_values(d: dict) -> list[str]:
    """The rules CMake applies too (cmake/board_config.cmake), and a few only Python can."""
    problems = []
    features = d["features"]
    if not all(isinstance(f, str) for f in features):
        problems.append(f"features must be strings, not {features!r}")
    elif unknown := [f for f in features if f not in FEATURES]:
        problems.append(f"unknown feature(s) {', '.join(map(repr, unknown))} (features: {', '.join(FEATURES)})")
    if not re.fullmatch(r"cortex-m[0-9a-z.+-]+", d["cpu"]):
        problems.append(f"cpu must be a GCC -mcpu name like 'cortex-m4', not {d['cpu']!r}")
    fpu = d["fpu"]
    if fpu == "none":
        if "fpu" in features:
            problems.append("fpu = 'none' but features has 'fpu'")
    elif re.fullmatch(r"auto|fpv[0-9a-z-]+", fpu):
        if "fpu" not in features:
            problems.append(f"fpu = {fpu!r} but features lacks 'fpu' (a board without one: fpu = 'none')")
    else:
        problems.append(f"fpu must be 'none', 'auto' or a GCC -mfpu name like 'fpv4-sp-d16', not {fpu!r}")
    if d["clock_hz"] <= 0 or d["uart"]["clock_hz"] <= 0:
        problems.append("clock_hz and [uart] clock_hz must be positive")
    if not 1 <= d["num_irqs"] <= MAX_IRQS:
        problems.append(f"num_irqs must be 1 to {MAX_IRQS} (the external interrupts of the core), not {d['num_irqs']}")
    if not re.fullmatch(r"[a-z0-9_]+", d["uart"]["driver"]):
        problems.append(f"[uart] driver must name firmware/drivers/uart_<driver>.c, not {d['uart']['driver']!r}")
    if "flash" in d and d["flash"]["method"] not in FLASH_METHODS:
        problems.append(f"[flash] method must be one of {', '.join(FLASH_METHODS)}, not {d['flash']['method']!r}")
    elif "flash" in d and d["flash"]["method"] in ("openocd", "pyocd") and d["flash"]["method"] not in d["flash"]:
        problems.append(f"[flash] method = {d['flash']['method']!r} needs its config: {d['flash']['method']} = \"...\"")
    if "renode" in d:
        renode = d["renode"]
        if not _RENODE_PLATFORM.fullmatch(renode["platform"]):
            problems.append(f"[renode] platform must name a platform file Renode ships, like "
                            f"'platforms/cpus/stm32f4.repl', not {renode['platform']!r}")
        if not _RENODE_PERIPHERAL.fullmatch(renode["uart"]):
            problems.append(f"[renode] uart must be a peripheral name like 'sysbus.usart1', not {renode['uart']!r}")
        if not 1 <= renode.get("performance_mips", 1) <= 100_000:
            problems.append(f"[renode] performance_mips must be 1 to 100000, not {renode['performance_mips']}")
    if "flash" not in d and "emulator" not in d:
        problems.append("a board needs an [emulator] table (QEMU runs it) or a [flash] table (a real board), or both")
    if d["kernels"] not in KERNEL_PATH_FEATURES:
        problems.append(f"kernels must be one of {', '.join(KERNEL_PATH_FEATURES)}, not {d['kernels']!r}")
    elif isinstance(features, list) and (missing := [f for f in KERNEL_PATH_FEATURES[d["kernels"]]
                                                     if f not in features]):
        problems.append(f"kernels = {d['kernels']!r} needs features {', '.join(map(repr, missing))}")
    spans = [(region, d["memory"][region]) for region in ("flash", "ram")]
    for name, mem in d["memory"].get("extra", {}).items():
        if not _REGION_NAME.fullmatch(name) or name in RESERVED_REGION_NAMES:
            problems.append(f"[memory.extra.{name}]: a region's name must be a lower-case identifier of at most 16 "
                            f"characters (a-z, 0-9, _; not {' or '.join(RESERVED_REGION_NAMES)})")
        spans.append((f"extra.{name}", mem))
    for region, mem in spans:
        if mem["origin"] < 0 or mem["size"] <= 0 or mem["origin"] + mem["size"] > 1 << 32:
            problems.append(f"[memory.{region}] must lie in the 32-bit address space with a positive size")
    for i, (a, ma) in enumerate(spans):
        for b, mb in spans[i + 1:]:
            if ma["origin"] < mb["origin"] + mb["size"] and mb["origin"] < ma["origin"] + ma["size"]:
                problems.append(f"[memory.{a}] ({ma['origin']:#x}, {ma['size']:#x} B) overlaps "
                                f"[memory.{b}] ({mb['origin']:#x}, {mb['size']:#x} B)")
    return problems


def _load(path: Path) -> Board:
    try:
        d = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ToolchainError(f"{path} is not a valid board description: {exc}") from exc
    problems = _check_table(d, "")
    if not problems:
        problems = _check_values(d)
    if problems:
        raise ToolchainError(f"{path} is not a valid board description: {'; '.join(problems)}",
                             "see boards/README.md for the keys of board.toml")
    emu = d.get("emulator", {})
    cal = d.get("calibration", {})
    return Board(
        name=d["name"], description=d.get("description", ""), cpu=d["cpu"], arch=d.get("arch", ""),
        features=tuple(d["features"]), fpu=d["fpu"], clock_hz=d["clock_hz"], num_irqs=d["num_irqs"],
        kernels=d["kernels"], flash=Memory(**d["memory"]["flash"]), ram=Memory(**d["memory"]["ram"]),
        uart=Uart(**d["uart"]), qemu_machine=emu.get("qemu_machine"), systick_hz=emu.get("systick_hz"),
        icount_shift=emu.get("icount_shift"), cpi=float(cal.get("cpi", 1.0)), cpi_calibrated="cpi" in cal,
        path=path.parent,
        extra_ram=tuple(Region(name, m["origin"], m["size"]) for name, m in d["memory"].get("extra", {}).items()),
        flashing=Flashing(**d["flash"]) if "flash" in d else None,
        renode=RenodeSettings(**d["renode"]) if "renode" in d else None,
    )


@functools.cache
def all_boards(boards_dir: Path = BOARDS_DIR) -> dict[str, Board]:
    """Every board of boards_dir (a folder of <name>/board.toml), by name."""
    boards = {}
    for path in sorted(Path(boards_dir).glob("*/board.toml")):
        board = _load(path)
        if board.name != path.parent.name:
            raise ToolchainError(f"{path}: name {board.name!r} differs from its folder {path.parent.name!r}")
        boards[board.name] = board
    return boards


def get_board(name: str, boards_dir: Path = BOARDS_DIR) -> Board:
    boards = all_boards(boards_dir)
    if name not in boards:
        raise ToolchainError(f"unknown board {name!r}", f"known boards: {', '.join(boards)} (see `tinyml boards`)")
    return boards[name]
