"""Tiny bare-metal test programs for the TCG plugin tests: a vector table, the `tm_profile_layer` marker the
plugin watches, a linker script, the arm-none-eabi-gcc build and a sandboxed QEMU run with the plugin loaded.
A program defines `reset_handler` after `PREAMBLE` and ends with a system reset request (QEMU -no-reboot exits)."""
from __future__ import annotations

import subprocess
from pathlib import Path

from toolchain.runners.qemu import SANDBOX

PREAMBLE = """\
extern unsigned int __stack_top;
void reset_handler(void);
static void default_handler(void) { for (;;) { } }
__attribute__((section(".vectors"), used))
static void (*const vectors[16])(void) = {
    (void (*)(void))&__stack_top, reset_handler,
    default_handler, default_handler, default_handler, default_handler, default_handler,
    0, 0, 0, 0, default_handler, default_handler, 0, default_handler, default_handler,
};
volatile int sink;
__attribute__((noinline)) void tm_profile_layer(int layer) { sink = layer; }
"""

LINKER_SCRIPT = """\
MEMORY {{ FLASH (rx) : ORIGIN = {flash:#x}, LENGTH = {length}
         RAM (rwx)  : ORIGIN = {ram:#x}, LENGTH = {length} }}
ENTRY(reset_handler)
SECTIONS {{
  .text : {{ KEEP(*(.vectors)) *(.text*) *(.rodata*) }} > FLASH
  .bss (NOLOAD) : {{ *(.bss*) *(COMMON) }} > RAM
  __stack_top = ORIGIN(RAM) + LENGTH(RAM);
}}
"""


def build_elf(d: Path, source: str, cpu_flags: list[str], flash: int, ram: int, length: str) -> Path:
    """`source` (after PREAMBLE) built into d/prog.elf with code at `flash` and data and stack at `ram`."""
    d.mkdir(parents=True)
    (d / "link.ld").write_text(LINKER_SCRIPT.format(flash=flash, ram=ram, length=length))
    (d / "prog.c").write_text(source)
    subprocess.run(["arm-none-eabi-gcc", *cpu_flags, "-mthumb", "-nostdlib", "-O1", "-T", str(d / "link.ld"),
                    str(d / "prog.c"), "-o", str(d / "prog.elf")], check=True, capture_output=True)
    return d / "prog.elf"


def run_with_plugin(elf: Path, machine: str, plugin: list[str]) -> None:
    """Run `elf` on QEMU `machine` under -icount with the plugin arguments `plugin`; it must exit cleanly."""
    cmd = ["qemu-system-arm", "-M", machine, "-nographic", "-monitor", "none", "-no-reboot", *SANDBOX,
           "-icount", "shift=0,align=off,sleep=off", "-kernel", str(elf), *plugin]
    proc = subprocess.run(cmd, capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
