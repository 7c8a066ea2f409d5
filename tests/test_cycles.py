"""Estimated cycles: the TCG plugin's instruction classes are exact on known code, and the per-core cost tables
turn them into cycles (no wait states) that a run reports next to instructions, deterministically."""
from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from toolchain.boards import all_boards, get_board
from toolchain.runners.cycles import CLASSES, EXTRAS, MODELS, P, cycle_model
from toolchain.runners.plugin.icount import SOURCES, build_plugin, marker_address, plugin_args, read_profile
from marker_firmware import PREAMBLE, build_elf, run_with_plugin

pytestmark = pytest.mark.emulator

needs_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("qemu-system-arm", "arm-none-eabi-gcc", "arm-none-eabi-nm", "gcc")),
    reason="needs qemu-system-arm, arm-none-eabi-gcc/nm and a host gcc")

# code at FLASH, data and stack in RAM: (cpu flags, machine, flash origin, ram origin)
MACHINES = {
    "m4": (["-mcpu=cortex-m4", "-DCLOBBERS="], "mps2-an386", 0x00000000, 0x20000000),
    "m55": (["-mcpu=cortex-m55", "-mfloat-abi=hard", '-DCLOBBERS=,"d0","d1","d2","d3","d4","d5"'], "mps3-an547",
            0x10000000, 0x30000000),
}

PROGRAM = PREAMBLE + """\
unsigned int data[64] __attribute__((aligned(16)));
void reset_handler(void) {
    *(volatile unsigned int *)0xE000ED88u |= 0xFu << 20;  /* CPACR: FPU and MVE on */
    __asm__ volatile("dsb\\n isb" ::: "memory");
    tm_profile_layer(0);
    __asm__ volatile("mov r0, %0\\n mov r1, %1\\n movs r5, #0\\n movs r3, #3\\n" LOOP_BODY
                     :: "r"(K), "r"(data) : "r0", "r1", "r2", "r3", "r4", "r5", "lr", "cc", "memory" CLOBBERS);
    tm_profile_layer(1);
    *(volatile unsigned int *)0xE000ED0Cu = 0x05FA0004u;
    __asm__ volatile("dsb" ::: "memory");
    for (;;) { }
}
"""

# One iteration of each loop and the class counts it adds (taken: the loop branch, every iteration but the last).
SCALAR = ("m4", '''"1: ldr r2, [r1]\\n ldr r4, [r1, #4]\\n str r4, [r1, #8]\\n str r4, [r1, r5]\\n"
              " ldr r2, [r1]\\n ldr r4, [r2, r5]\\n"
              " mla r4, r4, r3, r3\\n smull r2, r4, r3, r3\\n udiv r4, r0, r3\\n"
              " push {r2, r4}\\n pop {r2, r4}\\n cmp r0, #0\\n it ne\\n movne r4, #1\\n subs r0, #1\\n bne 1b"''',
          {"load": 3, "load_piped": 1, "store": 1, "store_reg": 1, "mac": 1, "mul_long": 1, "div": 1, "multi": 2,
           "xfer": 4, "alu": 4, "branch_cond": 1, "taken": 1})
# ldr r2 then "ldr r4, [r2, r5]": r2 is the first load's destination, so the second is not pipelined.
VECTOR = ("m55", '''"dls lr, r0\\n 1: vldrb.u8 q0, [r1]\\n vldrb.u8 q1, [r1, #16]\\n vmladava.s8 r2, q0, q1\\n"
              " vadd.i8 q2, q0, q1\\n vstrb.8 q2, [r1, #32]\\n le lr, 1b"''',
          {"mve_mem": 2, "mve_overlap": 2, "mve_op": 1, "loop_end": 1})

def _build(tmp: Path, core: str, body: str, k: int) -> Path:
    flags, _, flash, ram = MACHINES[core]
    one_line = " ".join(body.split("\n"))
    return build_elf(tmp / f"{core}-{k}", f"#define K {k}\n#define LOOP_BODY {one_line}\n" + PROGRAM, flags, flash,
                     ram, "512K")


def _loop_counts(so: Path, tmp: Path, core: str, body: str, k: int) -> dict[str, int]:
    """Per-class executions between the two markers of a K-iteration loop."""
    elf = _build(tmp, core, body, k)
    out = elf.parent / "counts.txt"
    run_with_plugin(elf, MACHINES[core][1], plugin_args(so, marker_address(elf), out, classes=True))
    profile = read_profile(out)
    first, second = (profile.counters(h) for h in profile.hits)
    span = {name: second[name] - first[name] for name in profile.names}
    assert sum(span[c] for c in CLASSES) == profile.hits[1][0] - profile.hits[0][0]  # every instruction once
    return span


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    return build_plugin(tmp_path_factory.mktemp("plugin_cache"))


@needs_tools
@pytest.mark.parametrize("core,body,per_iter", [SCALAR, VECTOR], ids=["m4-scalar", "m55-mve"])
def test_classes_of_a_known_loop_are_exact(plugin, tmp_path, core, body, per_iter):
    small, large = (_loop_counts(plugin, tmp_path, core, body, k) for k in (500, 1500))
    assert small == _loop_counts(plugin, tmp_path / "again", core, body, 500)  # deterministic
    delta = {name: large[name] - small[name] for name in large}
    expected = {name: 1000 * per_iter.get(name, 0) for name in delta}
    assert delta == expected


def test_plugin_and_tables_name_the_same_classes(tmp_path):
    """The C classifier's class list is the tables' (the plugin writes its names; the tables price them)."""
    header = SOURCES[1].read_text()
    names = [line.split('"')[1] for line in header.splitlines() if line.strip().startswith("X(")]
    assert tuple(names) == CLASSES
    for model in MODELS.values():
        assert set(model.costs) == set(CLASSES + EXTRAS)
        assert all(model.costs[c] >= 1 for c in CLASSES) and model.costs["taken"] >= 1  # cycles >= instructions
    for board in all_boards().values():
        assert cycle_model(board.cpu) is not None, board.cpu


def test_m4_table_prices_a_known_count():
    m4 = cycle_model("cortex-m4")
    counts = {"alu": 10, "load": 4, "load_piped": 3, "store": 2, "store_reg": 1, "multi": 2, "xfer": 7, "mac": 5,
              "branch": 1, "branch_cond": 6, "taken": 5, "div": 1}
    # 10 + 4*2 + 3 + 2 + 2 + (2 + 7) + 5 + (1+P) + 6 + 5*P + 7
    assert m4.cycles(counts) == 10 + 8 + 3 + 2 + 2 + 9 + 5 + (1 + P) + 6 + 5 * P + 7 == 65
    assert cycle_model("cortex-m3").cycles({"mac": 1, "mul_long": 1}) == 2 + 4
    assert cycle_model("cortex-m55").cycles({"mve_mem": 2, "mve_overlap": 2}) == 6
    assert cycle_model("cortex-m0") is None
    with pytest.raises(ValueError, match="does not price"):
        m4.cycles({"nonsense": 1})


@needs_tools
def test_classifier_reads_disassembly(tmp_path):
    """The classifier's text rules on capstone-style lines (host gcc only): condition suffixes vs BL/BIC, IT blocks,
    register lists, store addressing, load pipelining and its dependency rule."""
    driver = tmp_path / "drv.c"
    driver.write_text(f'#include <stdio.h>\n#include "{SOURCES[1]}"\n' + r"""
int main(void) {
    char line[256]; struct tm_context ctx = {0};
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0]) { memset(&ctx, 0, sizeof ctx); continue; }   /* blank line: new block */
        uint8_t b[4] = {0x00, 0x20, 0, 0};                        /* a 16-bit "movs r0, #0" */
        struct tm_insn_class c = tm_classify(b, 2, line, &ctx);
        printf("%s %u %d\n", tm_class_names[c.cls], c.xfer, c.cond_branch);
    }
}
""")
    exe = tmp_path / "drv"
    subprocess.run(["gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-o", str(exe), str(driver)], check=True)
    cases = [
        ("bls #0x20", "branch_cond 0 1"), ("bl #0x100", "branch 0 0"), ("blt.w #0x40", "branch_cond 0 1"),
        ("bic r0, r1", "alu 0 0"), ("bx lr", "branch 0 0"), ("cbz r0, #0x8", "branch_cond 0 1"),
        ("ite eq", "alu 0 0"), ("bx lr", "branch_cond 0 1"), ("mov r0, r1", "alu 0 0"), ("bx lr", "branch 0 0"),
        ("push.w {r4, r5, r6, r7, r8, sb, sl, fp, lr}", "multi 9 0"), ("pop {r4, pc}", "multi_pc 2 0"),
        ("ldrd r2, r3, [r0]", "multi 2 0"), ("vpush {d8, d9}", "multi 4 0"), ("ldr pc, [sp], #4", "load_pc 0 0"),
        ("str r1, [r0, #4]", "store 0 0"), ("str r1, [r0, r2]", "store_reg 0 0"),
        ("ldr r1, [r0]", "load 0 0"), ("str r1, [r0, r2]", "store 0 0"),
        ("ldr r1, [r0]", "load 0 0"), ("ldr r2, [r1, #4]", "load 0 0"), ("ldrb r3, [r0, #1]", "load_piped 0 0"),
        ("ldr r1, [r0], #4", "load_piped 0 0"), ("ldr r2, [r0]", "load 0 0"),
        ("smlad r0, r1, r2, r0", "mac 0 0"), ("smlalbb r0, r1, r2, r3", "mac_long 0 0"),
        ("smuad r0, r1, r2", "mul 0 0"), ("umull r0, r1, r2, r3", "mul_long 0 0"), ("sdiv r0, r1, r2", "div 0 0"),
        ("vadd.i32 q0, q1, q2", "mve_op 0 0"), ("vmul.f32 s0, s1, s2", "fp 0 0"), ("vldr s0, [r0]", "fp_mem 0 0"),
        ("isb sy", "barrier 0 0"), ("tbb [pc, r0]", "table_branch 0 0"), ("mov pc, lr", "branch 0 0"),
    ]
    proc = subprocess.run([str(exe)], input="\n".join(c for c, _ in cases) + "\n", capture_output=True, text=True,
                          check=True)
    got = proc.stdout.splitlines()
    assert [(c, g) for (c, _), g in zip(cases, got)] == [(c, want) for c, want in cases]


@needs_tools
def test_a_run_reports_estimated_cycles_deterministically(zoo_tflite, tmp_path, capsys):
    """The AD model on the M55 (mve kernels: scalar and MVE classes), run twice from one image."""
    from toolchain.cli.run import print_run
    from toolchain.pipeline import api

    b = get_board("mps3-an547")
    compiled = api.compile_stage(zoo_tflite("ad"), tmp_path / "c", target=b.kernels)
    image = api.build_stage(compiled, b, tmp_path / "fw", samples=2)
    first = api.run_stage(zoo_tflite("ad"), compiled, image, exact=True, work_dir=tmp_path / "w1")
    second = api.run_stage(zoo_tflite("ad"), compiled, image, exact=True, work_dir=tmp_path / "w2")
    assert first.bit_exact
    assert first.exact_cycles == second.exact_cycles and first.cycle_classes == second.cycle_classes
    s = first.summary()
    assert s["cycles_mean"] and s["cycles_per_mac"] > 0 and s["latency_from"].startswith("estimated cycles")
    assert s["estimated_latency_ms"] == pytest.approx(s["cycles_mean"] / b.clock_hz * 1e3, rel=1e-3)
    for k in range(2):
        instructions = sum(x for x in first.layer_instructions(k) if x is not None)
        classes = first.cycle_classes[k]
        assert sum(classes[c] for c in CLASSES) == instructions  # every counted instruction has a class
        assert first.cycles(k) >= instructions
        layer_cycles = first.layer_cycles(k)
        for ins, cyc in zip(first.layer_instructions(k), layer_cycles):
            assert (ins is None) == (cyc is None) and (cyc is None or cyc >= ins)
    assert sum(first.cycle_classes[0][c] for c in ("mve_op", "mve_mem", "mve_overlap")) > 0
    plain = dataclasses.replace(first, exact_cycles=None, cycle_classes=None)  # a run without the plugin
    assert plain.summary()["cycles_mean"] is None and plain.summary()["latency_from"] == "instructions x CPI"
    assert plain.summary()["estimated_latency_ms"] == pytest.approx(b.estimated_ms(s["instructions_mean"]), rel=1e-3)
    print_run(first)
    printed = capsys.readouterr().out
    assert "estimated cycles / inference (no wait states)" in printed and "est. cycles" in printed
    assert "estimated cycles / MAC" in printed and "from estimated cycles" in printed
    first.save(tmp_path / "saved")
    again = type(first).load(tmp_path / "saved")
    assert again.exact_cycles == first.exact_cycles and again.summary()["cycles_mean"] == s["cycles_mean"]
