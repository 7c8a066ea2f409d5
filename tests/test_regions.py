"""Several RAM regions (issue 15, item 7): a board lists its extra RAM regions ([memory.extra.<name>]); the arena is
split over them (the main RAM first, its largest buffers spilling to the next region) or pinned to one
(--arena-region); the weights may live in RAM (--weights-in ram); a model too big for every placement is refused
before anything is built, with the numbers per region."""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess

import pytest

import op_models as om
from conftest import convert
from toolchain.boards import Region, _load, get_board
from toolchain.cli import main
from toolchain.errors import ToolchainError
from toolchain.firmware import arena_regions, check_fits, main_ram_for_arena
from toolchain.pipeline import api

needs_arm_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("cmake", "arm-none-eabi-gcc", "arm-none-eabi-nm", "qemu-system-arm")),
    reason="needs cmake, arm-none-eabi-gcc/nm and qemu-system-arm")

# One 3x3 conv, 200x200x4 -> 16 channels: input 160,000 B + output 640,000 B live together, more than the
# M55's DTCM (512 KiB) holds; the input (with the test set) still fits its 512 KiB ITCM "flash".
BIG_INPUT = (200, 200, 4)


@pytest.fixture(scope="module")
def big_tflite(tmp_path_factory):
    model = om.conv2d(filters=16, input_shape=BIG_INPUT, activation="relu")
    return convert(model, om.representative(BIG_INPUT, n=2), tmp_path_factory.mktemp("big") / "big.tflite")


def _toml(extra: str) -> str:
    text = (get_board("mps2-an386").path / "board.toml").read_text()
    return text.replace("[uart]", extra + "[uart]", 1)


def test_boards_list_their_extra_ram_regions():
    an547, an500 = get_board("mps3-an547"), get_board("mps2-an500")
    assert [(r.name, r.origin, r.size) for r in an547.ram_regions] == [
        ("ram", 0x30000000, 512 * 1024), ("isram", 0x31000000, 4 << 20)]
    assert [r.name for r in an500.extra_ram] == ["psram"] and an500.region("psram").origin == 0x60000000
    assert get_board("mps2-an386").extra_ram == ()
    with pytest.raises(ToolchainError, match="(?s)has no memory region 'dtcm'.*ram, isram"):
        an547.region("dtcm")
    # the default split: the main RAM less the stack estimate and the runtime, then each extra region whole
    assert arena_regions(an547) == [("ram", main_ram_for_arena(an547)), ("isram", 4 << 20)]
    assert arena_regions(an547, "isram") == [("isram", 4 << 20)]


@pytest.mark.parametrize("extra, problem", [
    ("[memory.extra.psram]\norigin = 0x20100000\nsize = 0x1000\n",
     r"\[memory.ram\] .* overlaps \[memory.extra.psram\]"),
    ("[memory.extra.a]\norigin = 0x60000000\nsize = 0x1000\n[memory.extra.b]\norigin = 0x60000800\nsize = 0x1000\n",
     r"\[memory.extra.a\] .* overlaps \[memory.extra.b\]"),
    ("[memory.extra.PSRAM]\norigin = 0x60000000\nsize = 0x1000\n", "lower-case identifier"),
    ("[memory.extra.ram]\norigin = 0x60000000\nsize = 0x1000\n", "lower-case identifier"),
    ("[memory.extra.psram]\norigin = 0x60000000\n", r"no 'size' in \[memory.extra.psram\]"),
    ("[memory.extra.psram]\norigin = 0x60000000\nsize = 0x1000\nspeed = 1\n", r"unknown key 'speed'"),
])
def test_bad_extra_regions_are_refused(tmp_path, extra, problem):
    (tmp_path / "board.toml").write_text(_toml(extra))
    with pytest.raises(ToolchainError, match=problem):
        _load(tmp_path / "board.toml")


@pytest.mark.skipif(not shutil.which("cmake"), reason="needs cmake")
def test_cmake_checks_memory_ld_against_the_extra_regions(tmp_path):
    """CMake's board check: memory.ld must declare [memory.extra.<name>] with the same numbers and place
    *(.tm_arena.<name>) in it."""
    from toolchain.paths import REPO

    root = tmp_path / "repo"
    for name in ("boards", "firmware", "cmake", "CMakeLists.txt"):
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy2)(REPO / name, root / name)
    ld = root / "boards" / "mps3-an547" / "memory.ld"
    ld.write_text(ld.read_text().replace("LENGTH = 0x400000", "LENGTH = 0x200000"))

    def configure():
        return subprocess.run(["cmake", "-S", str(root), "-B", str(tmp_path / "b"), "-DBOARD=mps3-an547",
                               "-DAPP=selftest"], capture_output=True, text=True)

    proc = configure()
    assert proc.returncode != 0 and "memory.ld ISRAM" in proc.stderr and "[memory.extra.isram]" in proc.stderr
    ld.write_text(ld.read_text().replace("LENGTH = 0x200000", "LENGTH = 0x400000").replace(
        "*(.tm_arena.isram)", "*(.other)"))
    proc = configure()
    assert proc.returncode != 0 and "places no *(.tm_arena.isram)" in proc.stderr


def test_too_big_for_every_placement_is_refused_before_anything_is_written(big_tflite, tmp_path):
    an547 = get_board("mps3-an547")
    # pinned to the DTCM: about 643,000 B needed (output over the input where the conv allows) of its 518,144
    with pytest.raises(ToolchainError, match=r"needed vs available: ram 6\d\d,\d{3} of 518,144 B"):
        api.deploy(big_tflite, an547, tmp_path / "w", samples=1, arena_region="ram", progress=lambda m: None)
    assert not (tmp_path / "w").exists()
    # split over DTCM + a small ISRAM: the numbers per region
    small = dataclasses.replace(an547, extra_ram=(Region("isram", 0x31000000, 100_000),))
    with pytest.raises(ToolchainError,
                       match=r"needed vs available: ram [\d,]+ of 518,144 B, isram [\d,]+ of 100,000 B"):
        api.compile_stage(big_tflite, tmp_path / "c", target="mve", regions=arena_regions(small))
    assert not (tmp_path / "c").exists()
    # a plan compiled for another board's regions is refused by name before building
    plan = api.compile_stage(big_tflite, tmp_path / "c2", target="mve", regions=arena_regions(an547)).plan
    with pytest.raises(ToolchainError, match="mps2-an386 has no memory region 'isram'"):
        check_fits(plan, get_board("mps2-an386"))


def _symbols(elf) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    return {m.group(2): int(m.group(1), 16) for m in re.finditer(r"^([0-9a-f]+) \w (\S+)$", out, re.M)}


@needs_arm_tools
@pytest.mark.emulator
def test_arena_split_over_dtcm_and_isram_runs_bit_exact(big_tflite, tmp_path):
    """The one essential proof: on the M55 an arena larger than the DTCM spills its largest buffer to the ISRAM, and
    the firmware still matches LiteRT BUILTIN_REF bit for bit."""
    an547 = get_board("mps3-an547")
    result = api.deploy(big_tflite, an547, tmp_path / "w", samples=1, progress=lambda m: None)
    assert result.bit_exact
    regions = result.plan.arena_regions
    assert set(regions) == {"ram", "isram"} and regions["ram"] > 0 and regions["isram"] >= 640_000
    assert regions["ram"] <= main_ram_for_arena(an547)
    symbols = _symbols(tmp_path / "w" / "fw-mps3-an547" / "firmware.elf")
    assert 0x30000000 <= symbols["tm_arena"] < 0x30000000 + 512 * 1024
    assert 0x31000000 <= symbols["tm_arena_isram"] < 0x31000000 + (4 << 20)
    sizes = result.firmware
    assert sizes.regions["isram"]["arena"] == regions["isram"]
    assert sizes.ram["arena"] >= regions["ram"]
    assert result.summary()["regions_by_part"] == {"isram": {"arena": regions["isram"]}}


@needs_arm_tools
@pytest.mark.emulator
def test_cli_arena_pinned_to_isram_runs_bit_exact(big_tflite, tmp_path, capsys):
    rc = main(["run", str(big_tflite), "--board", "mps3-an547", "--samples", "1", "--arena-region", "isram",
               "--out", str(tmp_path / "w")])
    printed = capsys.readouterr().out
    assert rc == 0 and "yes (1 samples)" in printed
    assert re.search(r"arena [\d,]+ B: isram [\d,]+ B", printed)
    assert re.search(r"isram\s+arena\s+6\d\d,\d{3}", printed)  # the size report's isram rows
    symbols = _symbols(tmp_path / "w" / "fw-mps3-an547" / "firmware.elf")
    assert "tm_arena" not in symbols and 0x31000000 <= symbols["tm_arena_isram"] < 0x31400000


@needs_arm_tools
@pytest.mark.emulator
def test_weights_in_ram_run_bit_exact_and_are_reported_in_ram(tmp_path, capsys):
    tflite = convert(om.conv2d(filters=16), om.representative(om.IMAGE, n=4), tmp_path / "conv.tflite")
    rc = main(["run", str(tflite), "--board", "mps2-an386", "--samples", "1", "--weights-in", "ram",
               "--out", str(tmp_path / "w"), "--json", str(tmp_path / "run.json")])
    printed = capsys.readouterr().out
    assert rc == 0 and "yes (1 samples)" in printed
    data = json.loads((tmp_path / "run.json").read_text())
    weights = data["ram_by_part"]["model weights"]
    assert weights >= 16 * 3 * 3 * 4  # the int8 kernel, its bias and requantization tables besides
    assert data["flash_by_part"]["model weights"] >= weights  # their initial values stay in flash
    symbols = _symbols(tmp_path / "w" / "fw-mps2-an386" / "firmware.elf")
    marked = re.findall(r"static const \w+ (\w+)\[\d+\] TM_ALIGNED\(4\) TM_WEIGHTS_ATTR",
                        (tmp_path / "w" / "c" / "model.c").read_text())
    assert marked and all(0x20000000 <= symbols[name] < 0x20400000 for name in marked)
