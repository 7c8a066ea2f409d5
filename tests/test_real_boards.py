"""Real boards (issue 16, item 1): ports to silicon that QEMU does not emulate. Each builds with the DSP kernels; its
ELF lies inside the board's memories, with the vector table where the part boots and the reset vector on
Reset_Handler; its UART driver and clock set-up are linked; `tinyml boards` lists it as not emulated and `tinyml run`
refuses it before any work."""
from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from toolchain.boards import FLASH_METHODS, _load, all_boards, get_board
from toolchain.cli import main
from toolchain.compiler import compile_model
from toolchain.errors import ToolchainError
from toolchain.firmware import build_firmware, write_testset

needs_arm_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("cmake", "arm-none-eabi-gcc", "arm-none-eabi-readelf")),
    reason="needs cmake, arm-none-eabi-gcc and arm-none-eabi-readelf")

# board -> (the UART driver functions its board.c calls, the clock set-up function of its board.c)
REAL_BOARDS = {
    "nucleo-l4r5zi": (("tm_uart_stm32v2_lpuart_init", "tm_uart_stm32v2_write"), "clocks_to_120mhz"),
    "disco-f746ng": (("tm_uart_stm32v2_init", "tm_uart_stm32v2_write"), "clocks_to_216mhz"),
    "nucleo-u575zi-q": (("tm_uart_stm32v2_init", "tm_uart_stm32v2_write"), "clocks_to_160mhz"),
    "nucleo-h7a3zi-q": (("tm_uart_stm32v2_init", "tm_uart_stm32v2_write"), "clocks_to_280mhz"),
    "nrf52840-dk": (("tm_uart_nrf_uarte_init", "tm_uart_nrf_uarte_write"), "clocks_from_crystal"),
}


def readelf(elf: Path, *flags: str) -> str:
    return subprocess.run(["arm-none-eabi-readelf", "-W", *flags, str(elf)], capture_output=True, text=True,
                          check=True).stdout


def allocated_sections(elf: Path) -> dict[str, tuple[int, int]]:
    """name -> (address, size) of every section that occupies target memory (flag A), empty ones left out."""
    sections = {}
    for m in re.finditer(r"^\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]{8})\s+[0-9a-f]+\s+([0-9a-f]+)\s+\S+\s+(\S*)\s",
                         readelf(elf, "-S"), re.MULTILINE):
        name, addr, size, flags = m[1], int(m[2], 16), int(m[3], 16), m[4]
        if "A" in flags and size:
            sections[name] = (addr, size)
    return sections


def load_segments(elf: Path) -> list[tuple[int, int]]:
    """(load address, bytes in the file) of every LOAD segment with file contents: what gets flashed."""
    return [(int(m[1], 16), int(m[2], 16))
            for m in re.finditer(r"^\s*LOAD\s+\S+\s+\S+\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)", readelf(elf, "-l"),
                                 re.MULTILINE) if int(m[2], 16)]


def symbols(elf: Path) -> dict[str, int]:
    """Global and local symbol -> value (function symbols keep their Thumb bit)."""
    table = {}
    for m in re.finditer(r"^\s*\d+:\s+([0-9a-f]{8})\s+\d+\s+(FUNC|OBJECT|NOTYPE)\s+\S+\s+\S+\s+\S+\s+(\S+)$",
                         readelf(elf, "-s"), re.MULTILINE):
        table[m[3]] = int(m[1], 16)
    return table


def inside(addr: int, size: int, regions) -> bool:
    return any(origin <= addr and addr + size <= origin + length for origin, length in regions)


@pytest.fixture(scope="module")
def dsp_model(zoo_tflite, tmp_path_factory) -> Path:
    """The MLPerf Tiny KWS model compiled for the DSP kernels, with two embedded samples."""
    out = tmp_path_factory.mktemp("kws-dsp")
    compile_model(zoo_tflite("kws"), out, target="dsp")
    write_testset(out, [[np.zeros((1, 49, 10, 1), np.int8)], [np.ones((1, 49, 10, 1), np.int8)]])
    return out


def test_real_boards_are_registered_with_how_to_flash_them():
    assert set(REAL_BOARDS) <= set(all_boards())
    for name in REAL_BOARDS:
        board = get_board(name)
        assert not board.emulated and board.qemu_machine is None and board.icount_shift is None
        assert board.flashing is not None and board.flashing.method in FLASH_METHODS
        assert getattr(board.flashing, board.flashing.method, "set") is not None  # openocd/pyocd: its config
        assert board.kernels == "dsp" and "dsp" in board.features
        assert (board.path / "board.c").is_file()


@needs_arm_tools
@pytest.mark.parametrize("name", REAL_BOARDS)
def test_firmware_builds_with_dsp_kernels_and_fits_the_memory_map(name, dsp_model, tmp_path):
    board = get_board(name)
    image = build_firmware(dsp_model, board, tmp_path / "fw")
    elf = image.elf
    # the stack is sized from a known bound (libgcc's 64-bit division, pulled in by the LPUART driver, included)
    assert image.sizes.stack_bound.bytes is not None, image.sizes.stack_bound.describe()
    flash = [(board.flash.origin, board.flash.size)]
    ram = [(r.origin, r.size) for r in board.ram_regions]

    sections = allocated_sections(elf)
    assert {".vectors", ".text", ".rodata", ".stack", ".bss"} <= set(sections), sections
    for section, (addr, size) in sections.items():
        assert inside(addr, size, flash + ram), f"{section} at {addr:#x} (+{size:#x}) is outside {name}'s memories"
    for section in (".vectors", ".text", ".rodata"):
        assert inside(*sections[section], flash), section
    for section in (".stack", ".bss"):
        assert inside(*sections[section], ram), section
    segments = load_segments(elf)
    assert segments
    for addr, size in segments:  # what is programmed, .data's initial values included, lies in flash
        assert inside(addr, size, flash), f"load segment at {addr:#x} (+{size:#x}) is not in flash"

    # The core fetches SP and the reset vector from the start of flash (or an alias of it).
    assert sections[".vectors"][0] == board.flash.origin
    image_bin = (elf.parent / "firmware.bin").read_bytes()
    initial_sp, reset = struct.unpack_from("<II", image_bin, 0)
    syms = symbols(elf)
    assert initial_sp == syms["__tm_stack_top"] and inside(initial_sp - 8, 8, ram) and initial_sp % 8 == 0
    assert reset & 1, "the reset vector must have the Thumb bit set"
    assert reset == syms["Reset_Handler"] | 1
    text_addr, text_size = sections[".text"]
    assert text_addr <= reset - 1 < text_addr + text_size
    vectors = struct.unpack_from(f"<{16 + board.num_irqs}I", image_bin, 0)
    assert all(v & 1 and inside(v - 1, 2, flash) for v in vectors[1:] if v), "every handler is Thumb code in flash"

    drivers, clock_setup = REAL_BOARDS[name]
    for function in (*drivers, "tm_board_init", "tm_board_write", "tm_dwt_start", "tm_board_cycles",
                     "tm_systick_start"):
        assert function in syms, f"{function} is not linked"
    debug_names = set(re.findall(r"DW_AT_name\s*:.*?(\w+)\s*$",
                                 readelf(elf, "--debug-dump=info"), re.MULTILINE))
    assert clock_setup in debug_names, f"{clock_setup} (board.c's clock set-up) is not compiled in"
    # The M7s run with their L1 caches on (inlined into tm_board_init, so found in the debug information).
    assert ("tm_cache_m7_enable" in debug_names) == (board.cpu == "cortex-m7")


@needs_arm_tools
@pytest.mark.parametrize("name", REAL_BOARDS)
def test_cmake_defines_the_board_toml_clocks(name, tmp_path):
    board = get_board(name)
    proc = subprocess.run(["cmake", "-S", str(board.path.parent.parent), "-B", str(tmp_path / "fw"),
                           f"-DBOARD={name}", "-DAPP=selftest"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    flags = (tmp_path / "fw" / "CMakeFiles" / "firmware.dir" / "flags.make").read_text()
    assert f"-mcpu={board.cpu} -mthumb " in flags and f"-DTM_CORE_CLOCK_HZ={board.clock_hz}u" in flags
    assert f"-DTM_UART_CLOCK_HZ={board.uart.clock_hz}u" in flags


def test_tinyml_boards_lists_real_boards_as_not_emulated(capsys):
    assert main(["boards"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0]
    for column in ("cpu", "clock", "flash", "ram", "emulated", "flashed with"):
        assert column in header
    for name in REAL_BOARDS:
        board = get_board(name)
        line = next(line for line in lines if line.startswith(name + " "))
        assert board.cpu in line and f"{board.clock_hz / 1e6:g} MHz" in line
        assert f"@{board.flash.origin:#x}" in line and f"@{board.ram.origin:#x}" in line
        emulated = "renode" if board.renode is not None else "no"  # never QEMU: Renode where it has the chip
        assert re.search(rf"\b{emulated}\b", line) and "qemu" not in line and board.flashing.describe() in line
    an386 = next(line for line in lines if line.startswith("mps2-an386 "))
    assert "qemu -M mps2-an386" in an386


@pytest.mark.parametrize("name", REAL_BOARDS)
def test_tinyml_run_refuses_a_real_board_before_any_work(name, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", str(tmp_path / "missing.tflite"), "--board", name, "--out", str(out)])
    err = capsys.readouterr().err
    assert code != 0 and not out.exists()
    first = err.strip().splitlines()[0]
    assert f"board {name} is not emulated" in first and get_board(name).flashing.describe() in first
    assert "tinyml flash" in first


def _real_toml(flash: str) -> str:
    text = (get_board("nucleo-l4r5zi").path / "board.toml").read_text()
    return text[:text.index("[flash]")] + flash


@pytest.mark.parametrize("flash, problem", [
    ("", "needs an [emulator] table (QEMU runs it) or a [flash] table"),
    ('[flash]\nmethod = "jtag"\n', "[flash] method must be one of openocd, pyocd, gdb"),
    ('[flash]\nmethod = "openocd"\n', "[flash] method = 'openocd' needs its config"),
    ('[flash]\nmethod = "gdb"\nspeed = 4000\n', "unknown key 'speed' in [flash]"),
])
def test_bad_flash_tables_are_refused(flash, problem, tmp_path):
    (tmp_path / "board.toml").write_text(_real_toml(flash))
    with pytest.raises(ToolchainError, match=re.escape(problem)):
        _load(tmp_path / "board.toml")
    (tmp_path / "board.toml").write_text(_real_toml('[flash]\nmethod = "gdb"\n'))
    assert _load(tmp_path / "board.toml").flashing.describe() == "gdb"


@pytest.mark.skipif(not shutil.which("cmake"), reason="needs cmake")
@pytest.mark.parametrize("name, reset", [("nucleo-l4r5zi", "0"), ("mps2-an386", "1")])
def test_real_boards_halt_after_exit_and_emulated_ones_reset(name, reset, tmp_path):
    """A reset after TM EXIT ends a QEMU run (-no-reboot); on a board alone it would run the benchmark again."""
    proc = subprocess.run(["cmake", "-S", str(get_board(name).path.parent.parent), "-B", str(tmp_path / "fw"),
                           f"-DBOARD={name}", "-DAPP=selftest"], capture_output=True, text=True)
    if proc.returncode != 0 and "CMAKE_C_COMPILER" in proc.stderr:
        pytest.skip("needs arm-none-eabi-gcc")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    flags = (tmp_path / "fw" / "CMakeFiles" / "firmware.dir" / "flags.make").read_text()
    assert f"-DTM_EXIT_RESET={reset}" in flags
