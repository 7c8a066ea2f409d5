"""The static stack bound: GCC's .ci/.su figures parsed, the worst path found (or the reason there is none), and on
emulated boards the bound holding the measured high-water mark with the stack linked from it."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from toolchain.boards import get_board
from toolchain.paths import REPO
from toolchain.cli import main
from toolchain.firmware import DEFAULT_STACK, STACK_MARGIN, reserved_stack
from toolchain.pipeline.api import deploy
from toolchain.stackbound import (
    BOUND_FILE, Depth, StackBound, ci_graph, exception_frame, image_bound, jump_kind, parse_su, parse_ci,
    stack_effect, worst_depth,
)

# Two files as GCC 12 writes them (-fcallgraph-info=su): a static function's title is "file:name", a function
# declared but not defined in a file is an ellipse without bytes, and an indirect call goes to "__indirect_call".
APP_CI = r'''graph: { title: "app.c"
node: { title: "main" label: "main\napp.c:10:5\n16 bytes (static)" }
node: { title: "app.c:helper" label: "helper\napp.c:3:13\n32 bytes (static)" }
edge: { sourcename: "main" targetname: "app.c:helper" label: "app.c:11:5" }
node: { title: "leaf" label: "leaf\nlib.h:2:6" shape : ellipse }
edge: { sourcename: "app.c:helper" targetname: "leaf" label: "app.c:4:5" }
node: { title: "kernel" label: "kernel\nlib.h:3:6" shape : ellipse }
edge: { sourcename: "main" targetname: "kernel" label: "app.c:12:5" }
}
'''
LIB_CI = r'''graph: { title: "lib.c"
node: { title: "leaf" label: "leaf\nlib.c:1:6\n8 bytes (static)" }
node: { title: "kernel" label: "kernel\nlib.c:5:6\n64 bytes (static)" }
edge: { sourcename: "kernel" targetname: "leaf" label: "lib.c:6:5" }
}
'''


def ci(*nodes: str, edges: tuple[tuple[str, str], ...] = ()) -> str:
    """A .ci file of `nodes` ("name bytes qualifier") and `edges` (source, target; "__indirect_call" for one)."""
    lines = ['graph: { title: "t.c"']
    for node in nodes:
        name, size, qualifier = node.split()
        lines.append(f'node: {{ title: "{name}" label: "{name}\\nt.c:1:1\\n{size} bytes ({qualifier})" }}')
    lines += [f'edge: {{ sourcename: "{a}" targetname: "{b}" label: "t.c:{i}:5" }}' for i, (a, b) in enumerate(edges)]
    return "\n".join(lines + ["}"])


def test_a_call_chain_over_two_files_takes_the_deepest_path():
    graph = ci_graph([APP_CI, LIB_CI])
    assert graph["app.c:helper"].name == "helper" and graph["main"].calls == ("app.c:helper", "kernel")
    # main > helper > leaf = 16 + 32 + 8 = 56; main > kernel > leaf = 16 + 64 + 8 = 88
    assert worst_depth(graph, "main") == Depth(88, ("main", "kernel", "leaf"))
    assert worst_depth(graph, "app.c:helper").bytes == 40


def test_a_call_to_a_function_without_figures_makes_the_bound_unknown():
    depth = worst_depth(ci_graph([APP_CI]), "main")  # lib.c's .ci missing: leaf and kernel have no figures
    assert depth.bytes is None
    assert any("no stack figure for leaf" in r for r in depth.unknown)
    assert any("no stack figure for kernel" in r for r in depth.unknown)


def test_recursion_is_named_instead_of_a_number():
    graph = ci_graph([ci("main 8 static", "f 16 static", "g 24 static",
                         edges=(("main", "f"), ("f", "g"), ("g", "f")))])
    depth = worst_depth(graph, "main")
    assert depth.bytes is None and depth.unknown == ("recursion: f -> g -> f",)


def test_an_indirect_call_is_unknown_unless_its_targets_are_known():
    graph = ci_graph([ci("main 8 static", "f 16 static", "cb 40 static", "other 4 static",
                         edges=(("main", "f"), ("f", "__indirect_call")))])
    assert graph["f"].indirect == ("t.c:1:5",)
    depth = worst_depth(graph, "main")
    assert depth.bytes is None and depth.unknown == ("f calls through a function pointer (t.c:1:5)",)
    assert worst_depth(graph, "main", indirect_targets=("cb", "other")) == Depth(64, ("main", "f", "cb"))
    assert worst_depth(graph, "main", indirect_targets=()).bytes == 24  # nothing whose address is taken


def test_a_dynamic_frame_is_unknown_a_bounded_one_counts():
    unbounded = ci_graph([ci("main 8 static", "vla 32 dynamic", edges=(("main", "vla"),))])
    depth = worst_depth(unbounded, "main")
    assert depth.bytes is None and "vla allocates stack at run time" in depth.unknown[0]
    bounded = ci_graph([ci("main 8 static", "vla 32 dynamic,bounded", edges=(("main", "vla"),))])
    assert worst_depth(bounded, "main").bytes == 40


def test_su_lines_give_frames_and_qualifiers():
    frames = parse_su("/src/app.c:10:5:main\t16\tstatic\n/src/app.c:3:13:grow\t48\tdynamic\n"
                      "/src/app.c:7:6:fixed\t24\tdynamic,bounded\n")
    assert {n: (f.frame, f.dynamic) for n, f in frames.items()} == {
        "main": (16, False), "grow": (48, True), "fixed": (24, False)}


@pytest.mark.parametrize("op,operands,allocates", [
    ("push", "{r4, r5, r6, lr}", 16),
    ("vpush", "{d8-d15}", 64),
    ("stmdb", "sp!, {r4, r5, r6, r7, r8, r9, sl, fp, lr}", 36),
    ("sub", "sp, #76", 76),
    ("sub.w", "sp, sp, #200", 200),
    ("subw", "sp, sp, #1024", 1024),
    ("strd", "r4, r5, [sp, #-8]!", 8),
    ("str", "lr, [sp, #-4]!", 4),
    ("pop", "{r4, r5, r6, pc}", 0),
    ("add", "sp, #76", 0),
    ("ldr", "r3, [sp, #44]", 0),
    ("cmp", "sp, r3", 0),
    ("popeq", "{r4, pc}", 0),
    ("mov", "sp, r7", None),           # sp from a register: unbounded
    ("sub", "sp, sp, r3", None),
    ("msr", "msp, r0", None),
])
def test_stack_effect_of_library_code(op, operands, allocates):
    assert stack_effect(op, operands) == allocates


@pytest.mark.parametrize("op,operands,kind", [
    ("bl", "3f54 <tm_print>", "call"),
    ("b.w", "3f68 <tm_print_u64>", "branch"),   # a tail call when it leaves the function
    ("bne", "1e0 <main+0xd8>", "branch"),
    ("ble.n", "1e0 <main+0xd8>", "branch"),
    ("bleq", "3f54 <tm_print>", "call"),        # a call inside an IT block
    ("cbz", "r0, 1e0 <main+0xd8>", "branch"),
    ("le", "lr, 10000782 <f+0x26e>", "branch"),
    ("blx", "r4", "indirect"),
    ("bx", "r3", "indirect"),
    ("bxne", "r3", "indirect"),
    ("bx", "lr", None),
    ("pop", "{r4, pc}", "return"),
    ("popeq", "{r4, pc}", "return"),
    ("ldmia", "sp!, {r4, r5, pc}", "return"),
    ("ldr", "pc, [sp], #4", "return"),
    ("mov", "pc, r2", "indirect"),
    ("ldr", "r0, [pc, #32]", None),
    ("tbb", "[pc, r3]", None),
])
def test_jump_kinds(op, operands, kind):
    assert jump_kind(op, operands) == kind


def test_exception_frames_and_the_stack_sized_from_a_bound():
    assert exception_frame(False) == 32 + 4 and exception_frame(True) == 104 + 4
    known = StackBound(Depth(500, ("Reset_Handler",)), Depth(108, ("frame 108",)), None)
    assert known.bytes == 608 and reserved_stack(known) == -(-(608 + STACK_MARGIN) // 8) * 8
    unknown = StackBound(Depth(None, (), ("recursion: f -> f",)), Depth(108), None)
    assert unknown.bytes is None and reserved_stack(unknown) == DEFAULT_STACK
    assert unknown.describe() == "unknown: recursion: f -> f"
    assert StackBound.from_dict(json.loads(json.dumps(known.to_dict()))) == known


# A bare-metal image for the image analysis alone: a table of function pointers, an assembly function (no .ci: its
# frame comes from its pushes), and by -D switch a recursion or a variable-length array on the reset path.
IMAGE_C = r"""
extern unsigned int __tm_stack_top[];
typedef int (*op_fn)(int);
static __attribute__((noinline)) int twice(int x) { volatile int pad[4]; pad[0] = x; return 2 * pad[0]; }
static __attribute__((noinline)) int thrice(int x) { volatile int pad[16]; pad[0] = x; return 3 * pad[0]; }
static op_fn const ops[2] = { twice, thrice };
volatile int sink;
__attribute__((noinline)) int tm_model_run(int i, int x) { return ops[i & 1](x); }
int asm_leaf(void);
__asm__(".thumb_func\n.global asm_leaf\n.type asm_leaf, %function\nasm_leaf:\n push {r4, r5, r6, r7, lr}\n"
        " sub sp, #120\n add sp, #120\n pop {r4, r5, r6, r7, pc}\n.size asm_leaf, .-asm_leaf\n");
#ifdef RECURSE
__attribute__((noinline)) int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
#endif
#ifdef VLA
__attribute__((noinline)) int vla(int n) { volatile char buf[n]; buf[0] = 1; return buf[0]; }
#endif
void SysTick_Handler(void) { sink = sink + 1; }
void Reset_Handler(void)
{
    sink = tm_model_run(sink, 1) + asm_leaf();
#ifdef RECURSE
    sink = fib(sink);
#endif
#ifdef VLA
    sink = vla(sink);
#endif
    for (;;) { }
}
__attribute__((section(".vectors"), used)) void (*const vectors[16])(void) = {
    (void (*)(void))__tm_stack_top, Reset_Handler, [15] = SysTick_Handler };
"""


def build_image(d: Path, *defines: str) -> Path:
    """IMAGE_C built like the firmware (stack figures, relocations, map) into d (firmware.elf, .map, .ci, .su)."""
    d.mkdir()
    (d / "prog.c").write_text(IMAGE_C)
    flags = ["-mcpu=cortex-m4", "-mthumb", "-O2", *(f"-D{x}" for x in defines)]
    subprocess.run(["arm-none-eabi-gcc", *flags, "-ffunction-sections", "-fstack-usage", "-fcallgraph-info=su",
                    "-c", "prog.c", "-o", "prog.c.obj"], cwd=d, check=True, capture_output=True)
    subprocess.run(["arm-none-eabi-gcc", *flags, "-nostdlib", "-Wl,--gc-sections", "-Wl,--emit-relocs",
                    "-Wl,-Map=firmware.map", f"-L{REPO / 'firmware' / 'runtime'}",
                    "-T", str(REPO / "boards" / "mps2-an386" / "memory.ld"), "prog.c.obj", "-o", "firmware.elf"],
                   cwd=d, check=True, capture_output=True)
    return d


@pytest.mark.emulator
def test_image_bound_follows_function_pointers_and_library_code(tmp_path):
    d = build_image(tmp_path / "ok")
    frames = {t.rsplit(":", 1)[-1]: f.frame for t, f in parse_ci((d / "prog.c.ci").read_text()).items()}
    bound = image_bound(d, fp_context=False)
    assert bound.indirect_targets == ("thrice", "twice")  # the address-taken functions: ops[]
    assert bound.model_run == Depth(frames["tm_model_run"] + frames["thrice"], ("tm_model_run", "thrice"))
    assert bound.thread == Depth(frames["Reset_Handler"] + 5 * 4 + 120, ("Reset_Handler", "asm_leaf"))
    assert bound.exception == Depth(36 + frames["SysTick_Handler"], ("frame 36", "SysTick_Handler"))
    assert bound.bytes == bound.thread.bytes + 36


@pytest.mark.emulator
@pytest.mark.parametrize("define,reason", [("RECURSE", "recursion: fib -> fib"),
                                           ("VLA", "vla allocates stack at run time")])
def test_image_bound_names_why_it_is_unknown(define, reason, tmp_path):
    bound = image_bound(build_image(tmp_path / define, define), fp_context=True)
    assert bound.bytes is None and any(reason in r for r in bound.unknown), bound.unknown
    assert reserved_stack(bound) == DEFAULT_STACK


def check_stack(result) -> None:
    """A device run's stack: the static bound holds the measured high-water mark, the stack linked (and reported by
    the firmware) is the bound plus the margin, and within twice the high-water mark (issue 15)."""
    bound, reserved, measured = result.firmware.stack_bound, result.firmware.stack_reserved, result.run.stack_used
    assert bound is not None and bound.bytes is not None, bound and bound.unknown
    assert 0 < measured <= bound.bytes <= reserved == result.run.stack_size == reserved_stack(bound)
    assert reserved <= 2 * measured, (measured, bound.describe(), reserved)
    assert bound.model_run is not None and bound.model_run.bytes < bound.thread.bytes


@pytest.mark.emulator
@pytest.mark.parametrize("board,kernels", [("mps2-an386", "dsp"), ("mps3-an547", "mve"), ("mps2-an385", "ref")])
def test_bound_holds_the_measured_high_water_mark(board, kernels, zoo_tflite, tmp_path):
    result = deploy(zoo_tflite("kws"), get_board(board), tmp_path, samples=2, kernels=kernels,
                    progress=lambda _: None)
    assert result.bit_exact and result.plan.target == kernels
    check_stack(result)
    saved = StackBound.load(tmp_path / f"fw-{board}")
    assert saved == result.firmware.stack_bound and (tmp_path / f"fw-{board}" / BOUND_FILE).is_file()
    s = result.summary()
    assert (s["stack_bytes"], s["stack_bound_bytes"], s["stack_reserved_bytes"]) == (
        result.run.stack_used, saved.bytes, result.firmware.stack_reserved)


@pytest.mark.emulator
def test_cli_build_and_run_report_the_bound(zoo_tflite, tmp_path, capsys):
    assert main(["compile", str(zoo_tflite("ad")), "-o", str(tmp_path / "c")]) == 0
    assert main(["build", str(tmp_path / "c"), "--board", "mps2-an386"]) == 0
    printed = capsys.readouterr().out
    assert "stack: static bound" in printed and "Reset_Handler > main > tm_model_run" in printed
    assert f"bound + {STACK_MARGIN} B margin" in printed
    out_json = tmp_path / "run.json"
    assert main(["run", str(zoo_tflite("ad")), "--samples", "1", "--out", str(tmp_path / "w"),
                 "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    assert "stack high-water (measured)" in printed and "stack bound (static, worst case)" in printed
    data = json.loads(out_json.read_text())
    assert data["stack_bytes"] <= data["stack_bound_bytes"] <= data["stack_reserved_bytes"]
    assert data["stack_bound"]["thread"]["path"][:3] == ["Reset_Handler", "main", "tm_model_run"]
