"""A board is said once, in boards/<name>/board.toml: the registry and CMake read it, and a new board
folder (board.toml + memory.ld) is listed, builds and runs with no other edit."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from toolchain.boards import BOARDS_DIR, all_boards, get_board
from toolchain.errors import ToolchainError
from toolchain.runners.qemu import qemu_command

REPO = BOARDS_DIR.parent
BUILD_INPUTS = ("boards", "firmware", "cmake", "CMakeLists.txt")  # all the firmware build reads
QEMU_BOARDS = ("mps2-an385", "mps2-an386", "mps2-an500", "mps2-an505", "mps3-an547", "netduinoplus2")

needs_cmake = pytest.mark.skipif(not shutil.which("cmake"), reason="needs cmake")
needs_arm_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("cmake", "arm-none-eabi-gcc", "qemu-system-arm")),
    reason="needs cmake, arm-none-eabi-gcc and qemu-system-arm")


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """The build's inputs copied to tmp_path/repo, plus boards/my-m4: mps2-an386 renamed, no board.c."""
    root = tmp_path / "repo"
    for name in BUILD_INPUTS:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, root / name)
        else:
            shutil.copy2(src, root / name)
    new = root / "boards" / "my-m4"
    new.mkdir()
    toml = (REPO / "boards" / "mps2-an386" / "board.toml").read_text()
    (new / "board.toml").write_text(toml.replace('name = "mps2-an386"', 'name = "my-m4"', 1))
    shutil.copy2(REPO / "boards" / "mps2-an386" / "memory.ld", new / "memory.ld")
    return root


def edit_board(root: Path, pattern: str, replacement: str) -> None:
    toml = root / "boards" / "my-m4" / "board.toml"
    text, n = re.subn(pattern, replacement, toml.read_text(), count=1, flags=re.MULTILINE)
    assert n == 1, pattern
    toml.write_text(text)


def configure(root: Path, build: Path, board: str) -> subprocess.CompletedProcess:
    return subprocess.run(["cmake", "-S", str(root), "-B", str(build), f"-DBOARD={board}", "-DAPP=selftest"],
                          capture_output=True, text=True)


def one_line(text: str) -> str:
    """CMake wraps and indents its error messages."""
    return " ".join(text.split())


def test_new_board_folder_is_listed(repo_copy):
    boards_dir = repo_copy / "boards"
    boards = all_boards(boards_dir)
    assert set(QEMU_BOARDS) | {"my-m4"} <= set(boards)
    board = get_board("my-m4", boards_dir)
    reference = get_board("mps2-an386")
    assert board.path == boards_dir / "my-m4"
    assert (board.cpu, board.fpu, board.num_irqs, board.uart) == (reference.cpu, reference.fpu, reference.num_irqs,
                                                                   reference.uart)
    with pytest.raises(ToolchainError, match="known boards"):
        get_board("my-m4")  # not in the repository's own boards/


def test_repository_boards_state_every_fact():
    for name in QEMU_BOARDS:
        board = get_board(name)
        assert board.uart.driver in ("cmsdk", "stm32") and board.uart.base and board.uart.clock_hz
        assert 0 < board.num_irqs <= 496
        assert (board.fpu == "none") == ("fpu" not in board.features)
        assert not (board.path / "board.cmake").exists()


@pytest.mark.emulator
@needs_arm_tools
def test_new_board_builds_and_runs_with_no_other_edit(repo_copy, tmp_path):
    build = tmp_path / "fw"
    for cmd in (["cmake", "-S", str(repo_copy), "-B", str(build), "-DBOARD=my-m4", "-DAPP=selftest"],
                ["cmake", "--build", str(build)]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    board = get_board("my-m4", repo_copy / "boards")
    proc = subprocess.run(qemu_command(build / "firmware.elf", board), capture_output=True, text=True, timeout=10,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"TM SELFTEST board=my-m4 tick_hz={board.systick_hz}"
    assert lines[-1] == "TM EXIT code=0"


@pytest.mark.emulator
@needs_arm_tools
@pytest.mark.parametrize("name", QEMU_BOARDS)
def test_cmake_and_registry_agree(name, tmp_path):
    """CMake's flags and definitions are the registry's board.toml facts."""
    board = get_board(name)
    proc = configure(REPO, tmp_path / "fw", name)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    flags = (tmp_path / "fw" / "CMakeFiles" / "firmware.dir" / "flags.make").read_text()
    assert f"-mcpu={board.cpu} -mthumb " in flags
    assert ("-mfloat-abi=soft" in flags) == (board.fpu == "none")
    assert (f"-mfpu={board.fpu}" in flags) == (board.fpu not in ("none", "auto"))
    defines = set(re.search(r"^C_DEFINES = (.*)$", flags, re.MULTILINE)[1].split())
    assert {f'-DTM_BOARD_NAME=\\"{name}\\"', f"-DTM_CORE_CLOCK_HZ={board.clock_hz}u",
            f"-DTM_UART_BASE={board.uart.base:#x}u", f"-DTM_UART_CLOCK_HZ={board.uart.clock_hz}u",
            f"-DTM_NUM_IRQS={board.num_irqs}"} <= defines


BAD_BOARDS = {
    "missing num_irqs": (r"^num_irqs = .*\n", "", "no 'num_irqs' at the top level", "no 'num_irqs' at the top level"),
    "missing [uart] driver": (r"^driver = .*\n", "", "no 'driver' in [uart]", "no 'driver' in [uart]"),
    "clock not an integer": (r"^clock_hz = 25000000", 'clock_hz = "25 MHz"',
                             "'clock_hz' at the top level must be an integer",
                             "'clock_hz' at the top level must be an integer"),
    "unknown fpu": (r'^fpu = .*', 'fpu = "soft"', "fpu must be 'none', 'auto'", 'fpu must be "none", "auto"'),
    "fpu without the feature": (r'^features = .*', 'features = ["dsp"]', "features lacks 'fpu'",
                                'features lacks "fpu"'),
    "name differs from folder": (r'^name = .*', 'name = "other"', "differs from its folder",
                                 'name must be "my-m4", like its folder'),
    "dsp kernels without the feature": (r'^features = .*', 'features = ["fpu"]', "kernels = 'dsp' needs features 'dsp'",
                                        'kernels = "dsp" needs features "dsp"'),
    "unknown kernel path": (r'^kernels = .*', 'kernels = "fast"', "kernels must be one of ref, dsp, mve",
                            "kernels must be one of ref, dsp, mve"),
}


@pytest.mark.parametrize("case", BAD_BOARDS)
def test_invalid_board_toml_is_refused_by_the_registry(case, repo_copy):
    pattern, replacement, message, _ = BAD_BOARDS[case]
    edit_board(repo_copy, pattern, replacement)
    with pytest.raises(ToolchainError, match=re.escape(message)):
        all_boards(repo_copy / "boards")


@needs_cmake
@pytest.mark.parametrize("case", BAD_BOARDS)
def test_invalid_board_toml_is_refused_by_cmake(case, repo_copy, tmp_path):
    """Board errors stop CMake before it looks for a compiler, so this needs cmake only."""
    pattern, replacement, _, message = BAD_BOARDS[case]
    edit_board(repo_copy, pattern, replacement)
    proc = configure(repo_copy, tmp_path / "fw", "my-m4")
    assert proc.returncode != 0
    assert message in one_line(proc.stderr), proc.stderr


@needs_cmake
def test_cmake_names_the_uart_drivers_there_are(repo_copy, tmp_path):
    edit_board(repo_copy, r'^driver = "cmsdk"', 'driver = "pl011"')
    proc = configure(repo_copy, tmp_path / "fw", "my-m4")
    assert proc.returncode != 0
    assert ('[uart] driver "pl011" has no firmware/drivers/uart_<driver>.c '
            '(drivers: cmsdk, nrf_uarte, stm32, stm32v2)') in one_line(proc.stderr), proc.stderr
