"""The tm_icount TCG plugin counts guest instructions exactly, at every marker entry, deterministically."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from toolchain.errors import ToolchainError
from toolchain.runners.plugin.icount import build_plugin, marker_address, plugin_args, read_counts
from marker_firmware import PREAMBLE, build_elf, run_with_plugin

pytestmark = pytest.mark.emulator

needs_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("qemu-system-arm", "arm-none-eabi-gcc", "arm-none-eabi-nm", "gcc")),
    reason="needs qemu-system-arm, arm-none-eabi-gcc/nm and a host gcc")

# Two marker calls around a loop of exactly K iterations of LOOP_BODY, then a system reset request
# (AIRCR.SYSRESETREQ), which QEMU -no-reboot turns into its exit, as the firmware's own exit does.
PROGRAM = PREAMBLE + """\
void reset_handler(void) {
    tm_profile_layer(0);
    __asm__ volatile("mov r0, %0\\n ldr r1, =0xE000E018\\n" LOOP_BODY
                     :: "r"(K) : "r0", "r1", "r2", "r3", "cc", "memory");
    tm_profile_layer(1);
    *(volatile unsigned int *)0xE000ED0Cu = 0x05FA0004u;
    __asm__ volatile("dsb" ::: "memory");
    for (;;) { }
}
"""

# loop bodies and their instructions per iteration
PLAIN = ('"1: subs r0, #1\\n bne 1b"', 2)
# an MMIO load (SysTick CVR) at the top of the block: under -icount QEMU abandons the block at the
# load and re-translates; each instruction must still be counted once
MMIO = ('"1: ldr r2, [r1]\\n adds r3, #1\\n adds r3, #1\\n subs r0, #1\\n bne 1b"', 5)


def _build(tmp: Path, body: str, k: int) -> Path:
    return build_elf(tmp / f"fw{k}", f"#define K {k}\n#define LOOP_BODY {body}\n" + PROGRAM, ["-mcpu=cortex-m4"],
                     0x00000000, 0x20000000, "4M")


def _run(so: Path, elf: Path, out: Path) -> tuple[list[int], int]:
    run_with_plugin(elf, "mps2-an386", plugin_args(so, marker_address(elf), out))
    return read_counts(out)


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    return build_plugin(tmp_path_factory.mktemp("plugin_cache"))


@needs_tools
@pytest.mark.parametrize("body,per_iter", [PLAIN, MMIO], ids=["plain", "mmio"])
def test_marker_counts_are_exact_and_deterministic(plugin, tmp_path, body, per_iter):
    results = {}
    out_dir = tmp_path / "out,dir"  # a comma must survive QEMU's option parsing
    out_dir.mkdir()
    for k in (1000, 2000):
        elf = _build(tmp_path, body, k)
        first = _run(plugin, elf, out_dir / f"a{k}.txt")
        second = _run(plugin, elf, out_dir / f"b{k}.txt")
        assert first == second, "two runs gave different counts"
        hits, total = first
        assert len(hits) == 2
        assert 0 < hits[0] < hits[1] < total
        results[k] = hits[1] - hits[0]
    assert results[2000] - results[1000] == per_iter * 1000


@needs_tools
def test_build_is_cached(plugin):
    assert build_plugin(plugin.parent) == plugin
    assert plugin.name.startswith("tm_icount-") and plugin.suffix == ".so"


@needs_tools
def test_missing_marker_symbol(tmp_path):
    elf = _build(tmp_path, PLAIN[0], 10)
    with pytest.raises(ToolchainError, match="nope"):
        marker_address(elf, "nope")
    assert marker_address(elf) % 2 == 0


def test_plugin_args_and_read_counts(tmp_path):
    args = plugin_args(Path("/c/p.so"), 0x43, Path("/o,x/out.txt"))
    assert args == ["-plugin", "/c/p.so,marker=0x42,out=/o,,x/out.txt"]
    out = tmp_path / "counts.txt"
    out.write_text("hits 3\n5\n17\n40\ntotal 99\n")
    assert read_counts(out) == ([5, 17, 40], 99)
    out.write_text("hits 0\ntotal 7\n")
    assert read_counts(out) == ([], 7)
    out.write_text("hits 2\n5\ntotal 7\n")
    with pytest.raises(ToolchainError):
        read_counts(out)
