"""A model is untrusted input: nothing in it reaches generated C unescaped, and firmware built from it
gets no way into the host (no semihosting under the emulator).

The reproducers are the ones found by the hostile-input campaign: a tensor name holding `*/` injected
C that `tinyml compile --check` then ran on the host, and injected firmware that reached the host
through QEMU's semihosting (SYS_OPEN, SYS_SYSTEM)."""
from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

import op_models as om
import tflite_edit as te
from conftest import convert, have
from toolchain.boards import get_board
from toolchain.cli import main
from toolchain.compiler import compile_model
from toolchain.verify.check import check_against_reference
from toolchain.compiler.codegen import c_comment, c_string, require_plain_c
from toolchain.errors import ToolchainError
from toolchain.firmware import build_firmware, write_testset
from toolchain.runners.qemu import qemu_command, run_qemu

HOSTILE_NAMES = [
    b"a */ int tm_injected = 1; /* b",
    b'quote " and \\ backslash',
    b"line\nbreak\r\n#include <stdlib.h>",
    b"trigraph ??/\nsplice",
    b"\xff\xfe not utf-8 \xc3",
    b"tab\tbell\x07escape\x1b[31m",
    b"x" * 5000,
]


def _marker_payload(marker) -> bytes:
    """A name that, pasted raw into a C comment, defines a constructor creating `marker` on the host."""
    return (f'n */ __attribute__((constructor)) static void tm_pwn(void) {{ '
            f'extern int system(const char *); system("touch {marker}"); }} /* m').encode()


def _code(path) -> str:
    """A C file without its comments."""
    return re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


@pytest.fixture(scope="module")
def two_output_model(tmp_path_factory, keras):
    model = om.two_outputs()
    return convert(model, om.representative(model.input_shape[1:]), tmp_path_factory.mktemp("m") / "m.tflite")


def _rename_everything(buf: bytes, names: list[bytes]) -> bytes:
    """Every tensor gets a hostile name; so do the signature's inputs and outputs where LiteRT (the
    reference the test compares with) can read them: it fails on a signature name that is not UTF-8."""
    def change(model):
        sg = te.subgraph(model)
        for i, t in enumerate(sg.tensors):
            t.name = names[i % len(names)]
        for sig in model.signatureDefs or []:
            for k, m in enumerate(list(sig.inputs) + list(sig.outputs)):
                name = names[(k + 3) % len(names)]
                m.name = name if _utf8(name) else name.decode("utf-8", "replace").encode()
    return te.edit(buf, change)


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_hostile_names_compile_to_safe_c_and_stay_bit_exact(name, two_output_model, tmp_path):
    hostile = tmp_path / "hostile.tflite"
    hostile.write_bytes(_rename_everything(two_output_model.read_bytes(), [name]))
    out = tmp_path / "out"
    compile_model(hostile, out)
    for f in ("model.c", "model.h"):
        text = (out / f).read_text(encoding="ascii")  # printable ASCII only
        assert "??" not in text and "\\\n" not in text
        assert text.count("/*") == text.count("*/"), f  # every comment closes where we closed it
        assert "tm_injected" not in _code(out / f), f  # only ever inside a comment
    report = check_against_reference(hostile, out, samples=2)  # builds and runs the C on the host
    assert report.ok, report.summary()
    # strict ISO C (trigraphs on) with every warning an error still compiles it
    proc = subprocess.run(["gcc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter",
                           "-fsyntax-only", f"-I{out / 'kernels'}", str(out / "model.c")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_injected_constructor_never_runs_under_check(two_output_model, tmp_path, capsys):
    """The campaign's reproducer: `compile --check` compiled and ran a name's C on the host."""
    marker = tmp_path / "pwned"
    hostile = tmp_path / "hostile.tflite"
    hostile.write_bytes(_rename_everything(two_output_model.read_bytes(), [_marker_payload(marker)]))
    assert main(["compile", str(hostile), "-o", str(tmp_path / "out"), "--check", "2"]) == 0
    assert "bit-exact" in capsys.readouterr().out
    assert not marker.exists()
    assert "tm_pwn" not in _code(tmp_path / "out" / "model.c")


def test_escapers():
    assert "*/" not in c_comment("*/*/") and "\\" not in c_comment("a\\") and "??" not in c_comment("??/")
    assert len(c_comment("y" * 1000)) <= 96
    assert c_string('a"b\\c\n') == '"a\\042b\\134c\\012"'
    assert c_string("CONV_2D") == '"CONV_2D"'
    with pytest.raises(ToolchainError, match="unsafe"):
        require_plain_c("/* ok */ int a; /* ??/ */", "model.c")
    with pytest.raises(ToolchainError, match="unsafe"):
        require_plain_c("int \u00e9;", "model.c")


# --- the emulator gives the firmware no way into the host -------------------------------------------

_SEMIHOSTING_ATTACK = r"""
/* Appended by test_security: what an injected model.c would do. */
static int32_t tm_semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
}

int32_t tm_model_run(const void *input, void *output, int32_t exit_threshold)
{
    static const char path[] = "@OPEN@";
    static const char cmd[] = "touch @SYSTEM@";
    const uint32_t open_args[3] = {(uint32_t)path, 4u /* "w" */, sizeof(path) - 1u};
    const uint32_t system_args[2] = {(uint32_t)cmd, sizeof(cmd) - 1u};
    (void)tm_semihost(0x01u /* SYS_OPEN */, open_args);
    (void)tm_semihost(0x12u /* SYS_SYSTEM */, system_args);
    return tm_model_run_real(input, output, exit_threshold);
}
"""


@pytest.mark.emulator
@pytest.mark.skipif(not (have("qemu-system-arm") and have("arm-none-eabi-gcc")), reason="needs the ARM tools")
def test_firmware_cannot_reach_the_host_through_semihosting(two_output_model, tmp_path):
    board = get_board("mps2-an386")
    model_dir = tmp_path / "c"
    plan = compile_model(two_output_model, model_dir).plan
    opened, touched = tmp_path / "opened-by-firmware", tmp_path / "touched-by-firmware"
    source = (model_dir / "model.c").read_text().replace("int32_t tm_model_run(", "static int32_t tm_model_run_real(")
    (model_dir / "model.c").write_text(source + _SEMIHOSTING_ATTACK.replace("@OPEN@", str(opened))
                                       .replace("@SYSTEM@", str(touched)))
    rng = np.random.default_rng(0)
    write_testset(model_dir, [[rng.integers(-128, 128, size=i.shape, dtype=np.int8) for i in plan.inputs]])
    elf = build_firmware(model_dir, board, tmp_path / "fw").elf

    # The attack is real: with semihosting on, as the runner used to start QEMU, it reaches the host.
    cmd = qemu_command(elf, board)
    sandbox = cmd.index("-sandbox")
    del cmd[sandbox:sandbox + 2]
    subprocess.run(cmd + ["-semihosting-config", "enable=on,target=native"], capture_output=True, timeout=60,
                   stdin=subprocess.DEVNULL)
    assert opened.exists() and touched.exists()
    opened.unlink()
    touched.unlink()

    # Under our runner the first semihosting call is a fault, reported, and the host is untouched.
    with pytest.raises(ToolchainError, match="faulted.*HardFault"):
        run_qemu(elf, board, timeout=60)
    assert not opened.exists() and not touched.exists()
