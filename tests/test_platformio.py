"""`tinyml export-platformio`: the project PlatformIO validates, and, offline, builds into firmware that runs in QEMU
exactly like the firmware of our CMake build (the same UART log, byte for byte).

PlatformIO never reaches its registry here: its core directory is a temporary one holding a `tool-scons` package made
from the installed SCons (PyPI), and the build uses a local development platform (`platform = symlink://...`) whose
builder sets up Debian's arm-none-eabi-gcc with platform-ststm32's bare-metal defaults (-Os, --relax, libstdc++), the
ones the exported project must undo."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import op_models as om
from conftest import convert, have
from toolchain.boards import get_board
from toolchain.cli import main
from toolchain.compiler import compile_model
from toolchain.compiler.model_plan import ModelPlan
from toolchain.errors import ToolchainError
from toolchain.export.platformio import export_platformio, platformio_env
from toolchain.firmware import build_firmware, write_testset

PIO = Path(sys.executable).with_name("pio")
needs_pio = pytest.mark.skipif(not PIO.is_file(), reason="needs platformio (pip install platformio)")
needs_arm_tools = pytest.mark.skipif(not (have("arm-none-eabi-gcc") and have("cmake") and have("qemu-system-arm")),
                                     reason="needs arm-none-eabi-gcc, cmake and qemu-system-arm")
SCONS_VERSION = "4.41101.0"  # what PlatformIO 6.2 requires of tool-scons (platformio/dependencies.py: ~4.41101.0)

# platform-ststm32's builder/main.py + builder/frameworks/_bare.py, cut down to a build: the same defaults.
PLATFORM_BUILDER = '''
from os.path import join
from SCons.Script import AlwaysBuild, Builder, Default, DefaultEnvironment

env = DefaultEnvironment()
cpu = env.BoardConfig().get("build.cpu")
env.Replace(AR="arm-none-eabi-ar", AS="arm-none-eabi-as", CC="arm-none-eabi-gcc", CXX="arm-none-eabi-g++",
            OBJCOPY="arm-none-eabi-objcopy", RANLIB="arm-none-eabi-ranlib", SIZETOOL="arm-none-eabi-size",
            ARFLAGS=["rc"], PROGSUFFIX=".elf", PROGNAME="firmware")
env.Append(CCFLAGS=["-Os", "-ffunction-sections", "-fdata-sections", "-Wall", "-mthumb", "-mcpu=%s" % cpu],
           CPPDEFINES=[("F_CPU", "$BOARD_F_CPU")],
           LINKFLAGS=["-Os", "-Wl,--gc-sections,--relax", "-mthumb", "-mcpu=%s" % cpu],
           LIBS=["c", "gcc", "m", "stdc++"],
           BUILDERS=dict(ElfToBin=Builder(action="$OBJCOPY -O binary $SOURCES $TARGET", suffix=".bin")))
elf = env.BuildProgram()
firmware = env.ElfToBin(join("$BUILD_DIR", "${PROGNAME}"), elf)
AlwaysBuild(env.Alias("upload", firmware, env.VerboseAction("$UPLOADCMD", "Uploading $SOURCE")))
Default([env.Alias("buildprog", firmware, firmware)])
'''


@pytest.fixture(scope="module")
def compiled_model(tmp_path_factory, keras) -> Path:
    """A small conv model compiled for the DSP kernels, with two embedded random samples."""
    tmp = tmp_path_factory.mktemp("pio-model")
    model = om.conv2d()
    tflite = convert(model, om.representative(model.input_shape[1:]), tmp / "conv.tflite")
    out = tmp / "conv"
    compile_model(tflite, out, target="dsp")
    rng = np.random.default_rng(0)
    write_testset(out, [[rng.integers(-128, 128, spec.shape, dtype=np.int8) for spec in ModelPlan.load(out).inputs]
                        for _ in range(2)])
    return out


@pytest.fixture(scope="module")
def offline_pio(tmp_path_factory) -> tuple[dict[str, str], str]:
    """(environment for `pio`, platform spec): a core directory whose tool-scons comes from the installed SCons, and
    a local platform building with Debian's arm-none-eabi-gcc. Nothing to download."""
    import SCons

    root = tmp_path_factory.mktemp("pio")
    scons = root / "core" / "packages" / "tool-scons"
    shutil.copytree(Path(SCons.__file__).parent, scons / "SCons", ignore=shutil.ignore_patterns("__pycache__"))
    (scons / "scons.py").write_text("import os, sys\nsys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))\n"
                                    "from SCons.Script.Main import main\nsys.exit(main())\n")
    (scons / "package.json").write_text(json.dumps({"name": "tool-scons", "version": SCONS_VERSION, "system": "*"}))
    # .piopm: installed by PlatformIO from owner "platformio", as get_core_package_dir("tool-scons") looks it up
    (scons / ".piopm").write_text(json.dumps({"type": "tool", "name": "tool-scons", "version": SCONS_VERSION,
                                              "spec": {"owner": "platformio", "id": None, "name": "tool-scons",
                                                       "requirements": None, "uri": None}}))
    platform = root / "platform-offline"
    (platform / "builder").mkdir(parents=True)
    (platform / "platform.json").write_text(json.dumps({
        "name": "offline", "title": "offline test platform", "version": "0.0.1", "engines": {"platformio": "^6"},
        "frameworks": {}, "packages": {}}))
    (platform / "builder" / "main.py").write_text(PLATFORM_BUILDER)
    env = {**os.environ, "PLATFORMIO_CORE_DIR": str(root / "core"), "PLATFORMIO_SETTING_ENABLE_TELEMETRY": "no",
           "PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL": "3650", "PLATFORMIO_NO_ANSI": "true"}
    return env, f"symlink://{platform}"


def pio(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(PIO), *args], env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def env_options(env: dict[str, str], project: Path, name: str) -> dict[str, object]:
    """`pio project config --json-output`: the options of [env:<name>] as PlatformIO parsed them."""
    sections = json.loads(pio(env, "project", "config", "-d", str(project), "--json-output").stdout)
    return dict(dict(sections)[f"env:{name}"])


@needs_pio
@pytest.mark.parametrize("name, board_id, platform, protocol", [
    ("nucleo-l4r5zi", "nucleo_l4r5zi", "ststm32", "stlink"),
    ("nucleo-u575zi-q", "nucleo_u575zi_q", "ststm32", "stlink"),
    ("nrf52840-dk", "nrf52840_dk", "nordicnrf52", "jlink"),
    ("mps2-an386", "mps2_an386", "ststm32", "custom"),
    ("mps3-an547", "mps3_an547", "ststm32", "custom"),
])
def test_pio_validates_the_exported_project(name, board_id, platform, protocol, compiled_model, offline_pio,
                                            tmp_path):
    board = get_board(name)
    out = tmp_path / "project"
    export_platformio(compiled_model, board, out, stack_size=1024)
    env, _ = offline_pio
    lint = pio(env, "project", "config", "-d", str(out), "--lint").stdout
    assert "free from linting errors" in lint, lint
    options = env_options(env, out, name)
    assert "framework" not in options  # bare metal: our start-up code
    assert options["platform"] == platform and options["board"] == board_id
    assert options["upload_protocol"] == protocol and options["board_build.ldscript"] == "ld/memory.ld"
    assert options["platform_packages"] == ["platformio/toolchain-gccarmnoneeabi@~1.120301.0"]
    flags = options["build_flags"]
    assert "-O2" in flags and f"-mcpu={board.cpu}" in flags and "-Os" in options["build_unflags"]
    assert f"-D TM_CORE_CLOCK_HZ={board.clock_hz}u" in flags and f"-D TM_UART_BASE={board.uart.base:#x}u" in flags
    assert f"-D TM_EXIT_RESET={int(board.emulated)}" in flags and "-D TM_PROFILE" in flags
    assert "-Wl,--defsym=TM_STACK_SIZE=1024" in options["custom_tinyml_link_flags"]
    assert (out / "ld" / "memory.ld").read_text() == (board.path / "memory.ld").read_text()
    assert (out / "lib" / "tinyml_model" / "testset.c").read_text() == (compiled_model / "testset.c").read_text()
    readme = (out / "README.md").read_text()
    assert all(cmd in readme for cmd in ("pio run", "pio run -t upload", "pio device monitor -b 115200"))
    manifest = out / "boards" / f"{board_id}.json"
    assert manifest.is_file() == board.emulated
    if board.emulated:
        data = json.loads(manifest.read_text())
        assert data["build"]["cpu"] == board.cpu and data["upload"]["maximum_ram_size"] == board.ram.size
        assert f"-M {board.qemu_machine} " in options["upload_command"]


@pytest.mark.emulator
@needs_pio
@needs_arm_tools
def test_exported_project_builds_offline_and_runs_like_our_firmware(compiled_model, offline_pio, tmp_path, capsys):
    """The CLI builds with CMake for the stack bound and exports; `pio run` (offline platform) builds an image whose
    QEMU run prints exactly what our CMake-built image prints, and `pio run -t upload` runs it in QEMU."""
    from toolchain.runners.protocol import parse
    from toolchain.runners.qemu import run_qemu

    board = get_board("mps2-an386")
    env, platform = offline_pio
    out = tmp_path / "project"
    assert main(["export-platformio", str(compiled_model), "--board", board.name, "-o", str(out),
                 "--platform", platform]) == 0
    ours = build_firmware(compiled_model, board, tmp_path / "fw")
    assert f"stack {ours.sizes.stack_reserved:,} B" in capsys.readouterr().out
    assert f"TM_STACK_SIZE={ours.sizes.stack_reserved}" in (out / "platformio.ini").read_text()

    pio(env, "run", "-d", str(out))
    elf = out / ".pio" / "build" / board.name / "firmware.elf"
    theirs, expected = run_qemu(elf, board), run_qemu(ours.elf, board)
    assert theirs.log == expected.log  # outputs, exits, instruction counts, stack use: all of it
    assert len(theirs.samples) == 2 and theirs.stack_size == ours.sizes.stack_reserved

    upload = pio(env, "run", "-d", str(out), "-t", "upload").stdout
    uploaded = parse(upload[upload.index("TM BEGIN"):])
    assert [s.output for s in uploaded.samples] == [s.output for s in expected.samples]


@pytest.mark.emulator
@needs_arm_tools
def test_a_tflite_is_compiled_with_random_samples_for_the_boards_kernels(compiled_model, tmp_path):
    tflite = compiled_model.parent / "conv.tflite"
    out = tmp_path / "project"
    assert main(["export-platformio", str(tflite), "--board", "mps3-an547", "-o", str(out), "--samples", "3"]) == 0
    lib = out / "lib" / "tinyml_model"
    assert "tm_testset_count = 3u" in (lib / "testset.c").read_text()
    assert (lib / "kernels" / "mve").is_dir() and '#include "mve/' in (lib / "model.c").read_text()
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no staging directory left behind


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[0].startswith("error: ") and len(err) <= 2 and (len(err) == 1 or "hint:" in err[1]), err
    return "\n".join(err)


def test_errors_are_one_line_and_leave_nothing(compiled_model, tmp_path, capsys, monkeypatch):
    out = tmp_path / "project"
    assert main(["export-platformio", str(compiled_model), "--board", "nope", "-o", str(out)]) == 2
    assert "unknown board 'nope'" in one_line_error(capsys)

    out.mkdir()
    assert main(["export-platformio", str(compiled_model), "--board", "mps2-an386", "-o", str(out)]) == 2
    assert "exists" in one_line_error(capsys) and not any(out.iterdir())

    assert main(["export-platformio", str(tmp_path / "missing"), "--board", "mps2-an386", "-o",
                 str(tmp_path / "p2")]) == 2
    assert "does not exist" in one_line_error(capsys)

    tflite = compiled_model.parent / "conv.tflite"
    assert main(["export-platformio", str(tflite), "--board", "mps2-an386", "--kernels", "cmsis-nn", "-o",
                 str(tmp_path / "p2")]) == 2
    assert "CMSIS-NN checkout" in one_line_error(capsys) and not (tmp_path / "p2").exists()

    # a real board whose board.toml names no PlatformIO id
    board = get_board("nucleo-l4r5zi")
    flashing = type(board.flashing)(method="openocd", openocd="board/st_nucleo_l4.cfg")
    monkeypatch.setattr("toolchain.cli.export_platformio.get_board",
                        lambda name: type(board)(**{**board.__dict__, "flashing": flashing}))
    assert main(["export-platformio", str(compiled_model), "--board", board.name, "-o", str(tmp_path / "p3")]) == 2
    message = one_line_error(capsys)
    assert "has no PlatformIO board id" in message and 'platformio = "<id>"' in message
    assert not (tmp_path / "p3").exists()


def test_an_export_replaces_its_directory_whole(compiled_model, tmp_path):
    out = tmp_path / "project"
    export_platformio(compiled_model, get_board("mps2-an386"), out, stack_size=1024)
    (out / "stale.c").write_text("int stale;\n")
    export_platformio(compiled_model, get_board("mps2-an505"), out, stack_size=2048)
    assert not (out / "stale.c").exists() and "board = mps2_an505" in (out / "platformio.ini").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]


def test_a_model_for_kernels_the_board_lacks_is_refused(compiled_model, tmp_path):
    with pytest.raises(ToolchainError, match=re.escape("cannot run the dsp kernels")):
        export_platformio(compiled_model, get_board("mps2-an385"), tmp_path / "p", stack_size=1024)
    assert not (tmp_path / "p").exists()


def test_upload_protocol_follows_the_probe_in_board_toml():
    assert {name: platformio_env(get_board(name), 1024).upload_protocol
            for name in ("nucleo-l4r5zi", "disco-f746ng", "nucleo-h7a3zi-q", "nucleo-u575zi-q", "nrf52840-dk")} == {
        "nucleo-l4r5zi": "stlink", "disco-f746ng": "stlink", "nucleo-h7a3zi-q": "stlink",
        "nucleo-u575zi-q": "stlink", "nrf52840-dk": "jlink"}
