"""Compiled models on emulated Cortex-M boards: bit-exact with LiteRT BUILTIN_REF, measured, deterministic."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess

import numpy as np
import pytest

import op_models as om
from conftest import convert
from test_stack_bound import check_stack
from toolchain.boards import all_boards, get_board
from toolchain.cli import main
from toolchain.compiler import compile_model
from toolchain.pipeline.api import deploy
from toolchain.errors import MissingToolError, ToolchainError
from toolchain.firmware import build_firmware, check_fits, write_testset
from toolchain.runners.qemu import run_qemu

pytestmark = pytest.mark.emulator

QEMU_BOARDS = {"mps2-an385", "mps2-an386", "mps2-an500", "mps2-an505", "mps3-an547", "netduinoplus2"}


def test_registry_has_the_six_qemu_boards():
    boards = all_boards()
    assert QEMU_BOARDS <= set(boards)
    assert get_board("mps2-an386").cpu == "cortex-m4" and "dsp" in get_board("mps2-an386").features
    with pytest.raises(ToolchainError, match="known boards"):
        get_board("nope")


@pytest.mark.parametrize("name", ["ad", "ic", "kws", "vww"])
def test_mlperf_tiny_bit_exact_on_cortex_m4(name, zoo_tflite, tmp_path):
    result = deploy(zoo_tflite(name), get_board("mps2-an386"), tmp_path, samples=3, progress=lambda _: None)
    assert result.bit_exact, result.mismatches[:3]
    s = result.summary()
    assert s["samples"] == 3 and s["arena_bytes"] == result.plan.arena_bytes
    check_stack(result)
    assert s["instructions_mean"] > s["macs"]  # portable C: more than one instruction per MAC
    layers = result.layer_instructions(0)
    # the later layers of a patch stage run inside the stage's first layer: their own count is 0
    assert len(layers) == len(result.plan.layers)
    assert all(n and n > 0 for n, info in zip(layers, result.plan.layers) if info.in_stage is None)
    assert sum(layers) <= result.instructions(0)
    assert s["flash_by_part"]["model weights"] >= result.plan.weights_bytes * 0.9


@pytest.mark.parametrize("board,name", [("mps2-an385", "ad"), ("mps2-an500", "ic"), ("mps2-an505", "kws"),
                                        ("mps3-an547", "kws"), ("netduinoplus2", "kws")])
def test_other_boards_bit_exact(board, name, zoo_tflite, tmp_path):
    result = deploy(zoo_tflite(name), get_board(board), tmp_path, samples=2, progress=lambda _: None)
    assert result.bit_exact, result.mismatches[:3]
    assert result.run.board == board
    check_stack(result)


def test_runs_are_deterministic_and_exact_counts_match_systick(zoo_tflite, tmp_path):
    """Two plain runs print byte-identical logs; the TCG plugin's exact per-layer counts agree with the
    SysTick-derived ones of a plain run to within 2 instructions. (With the plugin loaded QEMU's virtual
    clock is perturbed, so the comparison is between a plugin run and a plain run of the same image.)"""
    board = get_board("mps2-an386")
    exact = deploy(zoo_tflite("kws"), board, tmp_path, samples=2, exact=True, progress=lambda _: None)
    elf = tmp_path / "fw-mps2-an386" / "firmware.elf"
    plain, again = run_qemu(elf, board), run_qemu(elf, board)
    assert plain.log == again.log
    systick = dataclasses.replace(exact, run=plain, exact_layers=None)
    for k in range(2):
        for p, t in zip(exact.layer_instructions(k), systick.layer_instructions(k)):
            assert abs(p - t) <= 2, (exact.layer_instructions(k), systick.layer_instructions(k))


def test_model_too_big_for_ram_is_refused_with_numbers(tmp_path, keras):
    inputs = keras.Input((96, 96, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(16, 3, padding="same")(inputs))
    tflite = convert(model, om.representative((96, 96, 3), n=4), tmp_path / "big.tflite")
    plan = compile_model(tflite, tmp_path / "c").plan
    with pytest.raises(ToolchainError, match=r"needs [\d,]+ bytes of RAM .* has 131,072: [\d,]+ bytes too many"):
        check_fits(plan, get_board("netduinoplus2"))


def test_flash_overflow_at_link_time_names_the_bytes(zoo_tflite, tmp_path):
    compile_model(zoo_tflite("kws"), tmp_path / "c")
    too_many = [[np.zeros((1, 49, 10, 1), np.int8)] for _ in range(2200)]  # 2200 x 490 B > 1 MiB
    write_testset(tmp_path / "c", too_many)
    with pytest.raises(ToolchainError, match=r"does not fit netduinoplus2: overflows FLASH by [\d,]+ bytes"):
        build_firmware(tmp_path / "c", get_board("netduinoplus2"), tmp_path / "fw")


def test_missing_cross_compiler_and_emulator_give_install_hints(zoo_tflite, tmp_path, monkeypatch):
    compile_model(zoo_tflite("kws"), tmp_path / "c")
    write_testset(tmp_path / "c", [[np.zeros((1, 49, 10, 1), np.int8)]])
    board = get_board("mps2-an386")
    fw = build_firmware(tmp_path / "c", board, tmp_path / "fw")
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(MissingToolError, match="apt-get install"):
        build_firmware(tmp_path / "c", board, tmp_path / "fw2")
    with pytest.raises(MissingToolError, match="apt-get install qemu-system-arm"):
        run_qemu(fw.elf, board)


def test_hanging_firmware_is_stopped_by_the_timeout(tmp_path):
    """A firmware that spins forever: the runner kills QEMU and says so."""
    src = tmp_path / "hang.c"
    src.write_text("void reset(void) { for (;;) { } }\n"
                   "__attribute__((section(\".vectors\"), used)) const void *vectors[2] = "
                   "{ (void *)0x20001000, (void *)reset };\n")
    (tmp_path / "link.ld").write_text("SECTIONS { . = 0; .text : { KEEP(*(.vectors)) *(.text*) } }\n")
    elf = tmp_path / "hang.elf"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-nostdlib", "-O1", "-T",
                    str(tmp_path / "link.ld"), str(src), "-o", str(elf)], check=True)
    with pytest.raises(ToolchainError, match=r"did not finish within 2 s on mps2-an386 \(hung\?\)"):
        run_qemu(elf, get_board("mps2-an386"), timeout=2)


def test_cli_run_writes_json_with_outputs(zoo_tflite, tmp_path, capsys):
    out_json = tmp_path / "run.json"
    rc = main(["run", str(zoo_tflite("ad")), "--board", "mps2-an386", "--samples", "2", "--out", str(tmp_path / "w"),
               "--json", str(out_json)])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "bit-exact vs LiteRT BUILTIN_REF" in printed and "yes (2 samples)" in printed
    assert "instructions / MAC" in printed and "estimated latency" in printed and "model weights" in printed
    data = json.loads(out_json.read_text())
    assert data["bit_exact"] and len(data["samples_detail"]) == 2
    assert len(data["samples_detail"][0]["outputs"]["reconstruction"]) == 640


def test_cli_boards_and_build(zoo_tflite, tmp_path, capsys):
    assert main(["boards"]) == 0
    listing = capsys.readouterr().out
    assert all(b in listing for b in QEMU_BOARDS)
    assert "kernels" in listing.splitlines()[0]  # each board's default path, as `--kernels` help says
    assert any(line.startswith("mps3-an547") and " mve " in line for line in listing.splitlines())
    assert main(["compile", str(zoo_tflite("kws")), "-o", str(tmp_path / "c")]) == 0
    compiled = capsys.readouterr().out
    assert re.search(r"TFLM head \(its arena for the same tensors\): ours is 0\.\d\dx +16,000", compiled)
    assert "model RAM without the stack" in compiled
    assert main(["build", str(tmp_path / "c"), "--board", "mps3-an547"]) == 0
    printed = capsys.readouterr().out
    assert "firmware size on mps3-an547" in printed and "arena" in printed
    ram = re.search(r"model RAM \(arena \+ stack bound\) +([\d,]+)", printed)
    arena = re.search(r"arena \(static, exact\): every tensor, inputs and outputs included +([\d,]+)", printed)
    assert ram and arena and int(ram.group(1).replace(",", "")) > int(arena.group(1).replace(",", ""))
    assert (tmp_path / "c" / "fw-mps3-an547" / "firmware.bin").is_file()
    assert os.path.getsize(tmp_path / "c" / "fw-mps3-an547" / "firmware.hex") > 0


def test_cli_bench_matrix_writes_csv_and_json(zoo_tflite, tmp_path, capsys):
    csv_path, json_path = tmp_path / "b.csv", tmp_path / "b.json"
    rc = main(["bench", str(zoo_tflite("ad")), "--boards", "mps2-an385,mps3-an547", "--kernels", "board,mve",
               "--out", str(tmp_path / "w"), "--csv", str(csv_path), "--json", str(json_path)])
    assert rc == 0
    rows = {(r["board"], r["kernels"]): r for r in json.loads(json_path.read_text())}
    assert set(rows) == {("mps2-an385", "ref"), ("mps3-an547", "mve")}  # each board's default; no MVE on the M3
    assert all(r["bit_exact"] and r["est_cycles"] >= r["instructions"] > 0 for r in rows.values())
    assert rows[("mps2-an385", "ref")]["instructions"] > 4 * rows[("mps3-an547", "mve")]["instructions"]
    assert csv_path.read_text().splitlines()[0].startswith("model,board,kernels,bit_exact")
    out = capsys.readouterr().out
    assert "mps3-an547" in out and "skipped: mve on mps2-an385" in out


def test_cli_bench_refuses_unknown_kernel_path(zoo_tflite, capsys):
    assert main(["bench", str(zoo_tflite("ad")), "--kernels", "turbo"]) == 2
    assert "unknown kernel path 'turbo'" in capsys.readouterr().err
