"""tinyml boards: the boards we build for: core, clock, memories, how each is flashed and whether it is emulated."""
from __future__ import annotations

from toolchain.boards import all_boards
from toolchain.cli.base import Command, command
from toolchain.report.table import format_table


def kib(n: int) -> str:
    return f"{n // 1024:,} KiB" if n < 1 << 20 else f"{n / (1 << 20):g} MiB"


@command("boards")
class Boards(Command):
    help = ("list the supported boards with CPU, default kernel path, clock, memories (extra RAM regions too), how "
            "each is flashed (`tinyml flash`) and which emulator runs it (QEMU; Renode when installed)")

    def run(self, args):
        rows = [[b.name, b.cpu, ",".join(b.features) or "-", b.kernels, f"{b.clock_hz / 1e6:g} MHz",
                 f"{kib(b.flash.size)} @{b.flash.origin:#x}", f"{kib(b.ram.size)} @{b.ram.origin:#x}",
                 ", ".join(f"{r.name} {kib(r.size)} @{r.origin:#x}" for r in b.extra_ram) or "-",
                 ", ".join([f"qemu -M {b.qemu_machine}"] * b.emulated + ["renode"] * (b.renode is not None)) or "no",
                 b.flashing.describe() if b.flashing else "gdb (a GDB server: QEMU -gdb)", b.description]
                for b in all_boards().values()]
        print(format_table(["board", "cpu", "features", "kernels", "clock", "flash", "ram", "extra ram (arena)",
                            "emulated", "flashed with", "description"], rows))
        return 0
