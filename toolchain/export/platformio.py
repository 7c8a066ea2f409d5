"""A PlatformIO project of a compiled model: what `tinyml build` builds, for `pio run -t upload`.

Bare metal (no `framework =`): our start-up code, runtime, UART driver, board support and harness go to `src/`, the
generated model, its kernels and the embedded test set to `lib/tinyml_model/`, the board's `memory.ld` and the
`sections.ld` it includes to `ld/`. Definitions, compiler flags, libraries and the stack size are those of our CMake
build (CMakeLists.txt, cmake/board_config.cmake, toolchain/firmware.py); the platform's bare-metal defaults that
differ (-Os, newlib-nano, libnosys, --relax) are removed by `build_unflags` and a post script (`tinyml_link.py`):
`build_flags` cannot reach the link command's CPU flags.

Board facts come from board.toml only (`toolchain.boards`): a real board's PlatformIO id is its `[flash] platformio`;
an emulated board without one gets a project-local manifest `boards/<id>.json`, and `pio run -t upload` runs it in
QEMU as our runner does.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jinja2

from toolchain.boards import Board
from toolchain.errors import ToolchainError
from toolchain.firmware import TestSet, build_firmware, check_testset
from toolchain.fsutil import atomic_dir, write_atomic, write_json
from toolchain.paths import FIRMWARE_DIR

TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                               undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)

# Where the project keeps what our CMake build compiles (its include directories, in CMake's order).
SRC_DIRS = {"runtime": "src/runtime", "drivers": "src/drivers", "app": "src/app", "board": "src/board"}
MODEL_LIB = "lib/tinyml_model"
INCLUDE_DIRS = ("src/runtime/include", "src/drivers", "src/app", MODEL_LIB, f"{MODEL_LIB}/kernels")
LD_DIR = "ld"
LINK_SCRIPT = "tinyml_link.py"
OPT = "-O2"  # CMake TM_OPT
# CMake target_compile_options after the CPU flags and TM_OPT. -fstack-usage/-fcallgraph-info (our stack bound's
# inputs) are left out: they change no code, and a user's PlatformIO toolchain may predate -fcallgraph-info.
COMPILE_FLAGS = ("-g", "-ffunction-sections", "-fdata-sections", "-Wall", "-Wextra")
LIBS = ("c", "m", "gcc")  # full newlib, not nano (CMake target_link_libraries)
BAUD = 115200  # the harness's UART (firmware/drivers)
# The platform's bare-metal defaults (platform-ststm32 / platform-nordicnrf52 builder/frameworks/_bare.py) that our
# compile lines do not have; tinyml_link.py drops their link-side counterparts.
UNFLAGS = ("-Os", "-nostdlib")
# PlatformIO's platform by MCU family, told by our UART driver (board.toml [uart] driver: the family's peripheral),
# and the GCC 12 toolchain both offer (optionalVersions): their default GCC 7 has neither the ACLE DSP intrinsics of
# our dsp kernels nor -mcpu=cortex-m55.
PLATFORMS = (("stm32", "ststm32"), ("nrf_", "nordicnrf52"))
TOOLCHAIN = "platformio/toolchain-gccarmnoneeabi@~1.120301.0"
EMULATED_PLATFORM = "ststm32"  # a generic Cortex-M bare-metal builder, for the boards without a PlatformIO id
# Probe names in a board's [flash] openocd config or serial hint -> PlatformIO upload/debug protocol.
PROBES = (("jlink", "jlink"), ("j-link", "jlink"), ("cmsis-dap", "cmsis-dap"), ("stlink", "stlink"),
          ("st-link", "stlink"), ("board/st_", "stlink"), ("board/stm32", "stlink"))
QEMU_GDB_PORT = 3333
QEMU_SANDBOX = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"  # runners/qemu.py SANDBOX


@dataclass(frozen=True)
class PlatformioEnv:
    """The project's one `[env:<board>]`: what platformio.ini says, typed."""
    env: str
    platform: str
    platform_packages: tuple[str, ...]
    board_id: str
    ldscript: str
    upload_protocol: str
    upload_command: str | None
    debug_tool: str
    debug_options: tuple[tuple[str, str], ...]
    build_unflags: tuple[str, ...]
    build_flags: tuple[str, ...]
    link_flags: tuple[str, ...]
    libs: tuple[str, ...]

    def render(self, board: Board) -> str:
        return TEMPLATES.get_template("platformio.ini.j2").render(
            **self.__dict__, board=board, baud=BAUD, opt=OPT, link_script=LINK_SCRIPT, emulated=board.emulated)


@dataclass(frozen=True)
class PlatformioProject:
    """An exported project: its directory, its environment and the stack it reserves."""
    path: Path
    board: Board
    env: PlatformioEnv
    stack_size: int


def cpu_flags(board: Board) -> tuple[str, ...]:
    """-mcpu/-mthumb/-mfloat-abi/-mfpu from `cpu` and `fpu` (cmake/board_config.cmake tm_board_config)."""
    flags = [f"-mcpu={board.cpu}", "-mthumb"]
    if board.fpu == "none":
        flags.append("-mfloat-abi=soft")
    else:
        flags.append("-mfloat-abi=hard")
        if board.fpu != "auto":
            flags.append(f"-mfpu={board.fpu}")
    return tuple(flags)


def definitions(board: Board) -> tuple[str, ...]:
    """CMake's compile definitions: the board's (name, clocks, UART), TM_EXIT_RESET (on for an emulated board: QEMU
    -no-reboot exits; off on a real one, which halts), TM_NUM_IRQS, TM_PROFILE."""
    defines = [f"TM_BOARD_NAME='\"{board.name}\"'", f"TM_CORE_CLOCK_HZ={board.clock_hz}u",
               f"TM_UART_BASE={board.uart.base:#x}u", f"TM_UART_CLOCK_HZ={board.uart.clock_hz}u",
               f"TM_EXIT_RESET={int(board.emulated)}", f"TM_NUM_IRQS={board.num_irqs}", "TM_PROFILE"]
    return tuple(defines)


def board_sources(board: Board) -> list[Path]:
    """The UART driver, then the board's *.c, or (none there) firmware/drivers/board_mps.c (tm_board_config)."""
    drivers = FIRMWARE_DIR / "drivers"
    return [drivers / f"uart_{board.uart.driver}.c", *(sorted(board.path.glob("*.c")) or [drivers / "board_mps.c"])]


def upload_protocol(board: Board) -> str:
    """The PlatformIO protocol of the probe on a real board, read from its [flash] openocd config, else its serial
    hint (board.toml names the probe there, e.g. "interface/jlink.cfg", "ST-LINK virtual COM port")."""
    flashing = board.flashing
    for text in (flashing.openocd, flashing.serial):
        for needle, protocol in PROBES:
            if text and needle in text.lower():
                return protocol
    raise ToolchainError(f"board {board.name}: cannot tell its debug probe from board.toml [flash]",
                         "name it in [flash] openocd (e.g. interface/stlink.cfg) or serial (e.g. ST-LINK ...)")


def qemu_command(board: Board, *extra: str) -> str:
    """Our runner's QEMU command line (toolchain/runners/qemu.py: no semihosting, sandboxed, -icount), on the image
    PlatformIO builds."""
    return " ".join(["qemu-system-arm", "-M", board.qemu_machine, "-nographic", "-monitor", "none", "-serial", "stdio",
                     "-no-reboot", "-sandbox", QEMU_SANDBOX,
                     "-icount", f"shift={board.icount_shift},align=off,sleep=off", *extra,
                     "-kernel", "$BUILD_DIR/${PROGNAME}.elf"])


def board_id(board: Board) -> str:
    """The board's PlatformIO id: board.toml's [flash] platformio, or our own for a project-local manifest."""
    if board.flashing is not None and board.flashing.platformio:
        return board.flashing.platformio
    if board.emulated:
        return board.name.replace("-", "_")
    raise ToolchainError(f"board {board.name} has no PlatformIO board id",
                         f"add platformio = \"<id>\" to [flash] in {board.path / 'board.toml'}")


def board_manifest(board: Board) -> dict:
    """A project-local board manifest for an emulated board (PlatformIO reads boards/<id>.json of the project)."""
    return {
        "build": {"cpu": board.cpu, "f_cpu": f"{board.clock_hz}L", "mcu": board.qemu_machine},
        "frameworks": [],
        "name": board.description or board.name,
        "upload": {"maximum_ram_size": board.ram.size, "maximum_size": board.flash.size, "protocol": "custom",
                   "protocols": ["custom"]},
        "url": "https://www.qemu.org/docs/master/system/arm/mps2.html",
        "vendor": "Arm",
    }


def platform_for(board: Board) -> str:
    """The PlatformIO platform of a board: by its MCU family."""
    if board.flashing is None or not board.flashing.platformio:
        return EMULATED_PLATFORM
    for driver, platform in PLATFORMS:
        if board.uart.driver.startswith(driver):
            return platform
    raise ToolchainError(f"board {board.name}: cannot tell its PlatformIO platform (ststm32 or nordicnrf52)",
                         "pass the platform explicitly (--platform)")


def platformio_env(board: Board, stack_size: int, *, platform: str | None = None) -> PlatformioEnv:
    """The environment that builds like our CMake: `platform` overrides the board's PlatformIO platform (e.g. a
    pinned version, or a local one for offline builds, which then brings its own toolchain)."""
    pio_id = board_id(board)
    cpu = cpu_flags(board)
    real = board.flashing is not None and bool(board.flashing.platformio)
    if real:
        protocol, command = upload_protocol(board), None
        debug_tool, debug = protocol, ()
    else:
        protocol, command = "custom", qemu_command(board)
        debug_tool = "custom"
        debug = (("debug_server", qemu_command(board, "-S", "-gdb", f"tcp::{QEMU_GDB_PORT}")),
                 ("debug_port", f"localhost:{QEMU_GDB_PORT}"))
    compile_flags = (*cpu, OPT, *COMPILE_FLAGS, *(f"-D {d}" for d in definitions(board)),
                     *(f"-I {d}" for d in INCLUDE_DIRS))
    link_flags = (*cpu, "-nostartfiles", "-Wl,--gc-sections", f"-Wl,--defsym=TM_STACK_SIZE={stack_size}",
                  "-Wl,-Map=${BUILD_DIR}/firmware.map")
    return PlatformioEnv(
        env=board.name, platform=platform or platform_for(board), platform_packages=() if platform else (TOOLCHAIN,),
        board_id=pio_id, ldscript=f"{LD_DIR}/memory.ld", upload_protocol=protocol, upload_command=command,
        debug_tool=debug_tool, debug_options=debug, build_unflags=UNFLAGS, build_flags=compile_flags,
        link_flags=link_flags, libs=LIBS)


def _model_kernels(model_dir: Path) -> str:
    try:
        return str(json.loads((model_dir / "model_plan.json").read_text())["target"])
    except (OSError, ValueError, KeyError) as exc:
        raise ToolchainError(f"{model_dir} is not a compiled model (model_plan.json: {exc})",
                             f"run `tinyml compile MODEL.tflite -o {model_dir}` first") from None


def _copy(files, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy2(f, dest / f.name)


def _model_files(model_dir: Path) -> list[tuple[Path, str]]:
    """What CMake compiles of MODEL_DIR (*.c, kernels/*.c, kernels/*/*.c) and the headers beside them."""
    files = []
    for pattern in ("*.c", "*.h", "kernels/*.c", "kernels/*.h", "kernels/*/*.c", "kernels/*/*.h"):
        files += [(f, f.relative_to(model_dir).as_posix()) for f in sorted(model_dir.glob(pattern)) if f.is_file()]
    return files


def check_kernels(board: Board, kernels: str) -> None:
    """The board runs kernel path `kernels`, and its code is all ours (one-line errors)."""
    board.check_kernels(kernels)
    if kernels == "cmsis-nn":
        raise ToolchainError("a model compiled for --kernels cmsis-nn calls your CMSIS-NN checkout, which the "
                             "PlatformIO project would not contain", "compile with --kernels ref, dsp or mve")


def check_exportable(model_dir: Path, board: Board) -> str:
    """One-line errors, before any build: the board has a PlatformIO id (or is emulated), the model is compiled for
    a kernel path the board runs and is self-contained. Returns the kernel path."""
    board_id(board)
    kernels = _model_kernels(model_dir)
    check_kernels(board, kernels)
    return kernels


def export_platformio(model_dir: Path, board: Board, out_dir: Path, *, stack_size: int | None = None,
                      platform: str | None = None, build_dir: Path | None = None) -> PlatformioProject:
    """Write the PlatformIO project of `model_dir` (compiled, with its embedded test set: `tinyml build` or
    `write_testset`) for `board` into `out_dir`, whole or not at all (an existing `out_dir` is replaced).

    `stack_size`: the stack our build reserved (`FirmwareImage.sizes.stack_reserved`); None builds the firmware with
    CMake once (in `build_dir`, else a temporary directory) and takes it from there. `platform`: see
    `platformio_env`."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    kernels = check_exportable(model_dir, board)
    check_testset(model_dir)
    if stack_size is None:
        with tempfile.TemporaryDirectory(prefix="tinyml-pio-") as tmp:
            image = build_firmware(model_dir, board, Path(build_dir or tmp) / "fw")
            stack_size = image.sizes.stack_reserved
    env = platformio_env(board, stack_size, platform=platform)
    with atomic_dir(out_dir) as staging:
        _write_project(staging, model_dir, board, env, kernels, stack_size)
    return PlatformioProject(out_dir, board, env, stack_size)


def _write_project(root: Path, model_dir: Path, board: Board, env: PlatformioEnv, kernels: str,
                   stack_size: int) -> None:
    runtime = FIRMWARE_DIR / "runtime"
    _copy(sorted([*runtime.glob("*.c"), *runtime.glob("*.h")]), root / SRC_DIRS["runtime"])
    _copy(sorted((runtime / "include").glob("*.h")), root / SRC_DIRS["runtime"] / "include")
    _copy(sorted((FIRMWARE_DIR / "drivers").glob("*.h")), root / SRC_DIRS["drivers"])
    _copy(sorted([*(FIRMWARE_DIR / "app").glob("*.c"), *(FIRMWARE_DIR / "app").glob("*.h")]), root / SRC_DIRS["app"])
    _copy(board_sources(board), root / SRC_DIRS["board"])
    _copy([board.path / "memory.ld", runtime / "sections.ld"], root / LD_DIR)
    lib = root / MODEL_LIB
    for src, rel in _model_files(model_dir):
        (lib / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, lib / rel)
    # Linked as objects like CMake's (not an archive); the sources CMake globs, every kernel path's headers beside.
    write_json(lib / "library.json", {
        "name": "tinyml_model", "version": "1.0.0", "description": "generated by tinyml-toolchain",
        "frameworks": "*", "platforms": "*",
        "build": {"srcFilter": ["-<*>", "+<*.c>", "+<kernels/*.c>", "+<kernels/*/*.c>"], "libArchive": False}})
    manifest = not (board.flashing is not None and board.flashing.platformio)
    if manifest:
        write_json(root / "boards" / f"{env.board_id}.json", board_manifest(board))
    write_atomic(root / "platformio.ini", env.render(board))
    write_atomic(root / LINK_SCRIPT, TEMPLATES.get_template(f"{LINK_SCRIPT}.j2").render(ld_dir=LD_DIR))
    samples = TestSet.load(model_dir).samples
    write_atomic(root / "README.md", TEMPLATES.get_template("README.md.j2").render(
        model=model_dir.name, board=board, env=env.env, board_id=env.board_id, board_manifest=manifest,
        samples=samples, baud=BAUD, kernels=kernels, ld_dir=LD_DIR, cpu_flags=" ".join(cpu_flags(board)), opt=OPT,
        stack=stack_size,
        upload_what="run it in QEMU (qemu-system-arm), the UART on the terminal" if board.emulated and manifest
        else f"flash it through the board's probe ({env.upload_protocol})",
        monitor_note="" if not manifest else " (QEMU prints it on `pio run -t upload` already)"))

