"""Whole outputs: a compile or stage is all new or all old, never half-written, stale, or private to its writer."""
from __future__ import annotations

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import op_models as om
from conftest import convert
from toolchain.cli import main
from toolchain.compiler import compile_model
from toolchain.errors import ToolchainError
from toolchain.fsutil import atomic_dir, remove_stale_staging, write_atomic
from toolchain.pipeline.stages import Pipeline


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def hidden(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="module")
def models(tmp_path_factory, keras) -> dict[str, Path]:
    """Two small models with different plans (A: conv on an image, B: dense on a vector)."""
    d = tmp_path_factory.mktemp("models")
    a, b = om.conv2d(), om.dense()
    return {"a": convert(a, om.representative(a.input_shape[1:]), d / "a.tflite"),
            "b": convert(b, om.representative(b.input_shape[1:]), d / "b.tflite")}


def test_disk_full_mid_write_leaves_the_previous_output_as_it_was(models, tmp_path, monkeypatch):
    from toolchain.compiler import driver

    out = tmp_path / "out"
    compile_model(models["a"], out)
    before = snapshot(out)
    written = []

    def disk_fills_up(path, data):
        if written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        written.append(path)
        write_atomic(path, data)

    monkeypatch.setattr(driver, "write_atomic", disk_fills_up)
    with pytest.raises(ToolchainError, match="cannot write .*No space left on device"):
        compile_model(models["b"], out)
    assert written  # it failed after a file had been written
    assert snapshot(out) == before
    assert hidden(tmp_path) == []  # no staging directory left behind


def test_compiling_into_another_models_dir_replaces_it_whole(models, tmp_path):
    from toolchain.firmware import check_testset, write_testset

    out = tmp_path / "out"
    plan_a = compile_model(models["a"], out).plan
    write_testset(out, [[np.zeros(plan_a.inputs[0].shape, np.int8)]])
    check_testset(out)  # made for this plan
    testset_of_a = (out / "testset.c").read_bytes()
    (out / "fw-mps2-an386").mkdir()
    compile_model(models["b"], out)
    assert not (out / "testset.c").exists() and not (out / "fw-mps2-an386").exists()
    assert json.loads((out / "model_plan.json").read_text())["source"].endswith("b.tflite")
    (out / "testset.c").write_bytes(testset_of_a)  # A's test set copied back in by hand
    with pytest.raises(ToolchainError, match="testset.c was made for another model"):
        check_testset(out)


@pytest.mark.emulator
def test_firmware_build_refuses_a_testset_of_another_plan(models, tmp_path):
    from toolchain.boards import get_board
    from toolchain.firmware import build_firmware, write_testset

    a, b = tmp_path / "a", tmp_path / "b"
    plan_a = compile_model(models["a"], a).plan
    compile_model(models["b"], b)
    write_testset(a, [[np.zeros(plan_a.inputs[0].shape, np.int8)]])
    (b / "testset.c").write_bytes((a / "testset.c").read_bytes())
    with pytest.raises(ToolchainError, match="made for another model"):
        build_firmware(b, get_board("mps2-an386"), tmp_path / "fw")
    assert not (tmp_path / "fw").exists()  # refused before CMake ran
    (b / "testset.c").write_text('#include "testset.h"\n')  # hand-written: unknown plan
    with pytest.raises(ToolchainError, match="does not say which model_plan.json"):
        build_firmware(b, get_board("mps2-an386"), tmp_path / "fw")


def test_a_directory_of_the_users_is_never_replaced(models, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ToolchainError, match="not empty and is not a compile output") as err:
        compile_model(models["a"], mine)
    assert "choose an empty or new directory" in str(err.value)
    assert snapshot(mine) == {"notes.txt": b"keep me"}
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ToolchainError, match="is a file, not a directory"):
        compile_model(models["a"], a_file)
    assert main(["compile", str(models["a"]), "-o", str(a_file)]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert a_file.read_text() == "x"
    empty = tmp_path / "empty"
    empty.mkdir()
    compile_model(models["a"], empty)
    assert (empty / "model_plan.json").is_file()


def test_staging_dirs_of_killed_runs_are_removed_next_time(models, tmp_path):
    out = tmp_path / "out"
    killed = subprocess.run([sys.executable, "-c", (
        "import os, signal, sys\n"
        "from toolchain.fsutil import atomic_dir\n"
        "with atomic_dir(sys.argv[1]) as d:\n"
        "    (d / 'model.c').write_text('half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"), str(out)], cwd=Path(__file__).parents[1])
    assert killed.returncode == -signal.SIGKILL
    assert len(hidden(tmp_path)) == 1 and ".tmp-" in hidden(tmp_path)[0]
    other = tmp_path / f".other.tmp-{dead_pid()}-0123abcd"
    other.mkdir()
    (other / "x").write_text("stale")
    lookalike = tmp_path / ".not-staging"  # not named like a staging directory: left alone
    lookalike.mkdir()
    compile_model(models["a"], out)
    assert hidden(tmp_path) == [".not-staging"]


def test_a_stage_of_a_live_process_is_kept_and_a_kill_between_renames_loses_nothing(tmp_path):
    live = tmp_path / f".x.tmp-{os.getppid()}-0123abcd"  # a live pid holding no lock, but just created
    live.mkdir()
    previous = tmp_path / f".x.old-{dead_pid()}-0123abcd"  # killed after moving x aside, before the new x
    previous.mkdir()
    (previous / "model_plan.json").write_text("{}")
    assert remove_stale_staging(tmp_path) == []
    assert (tmp_path / "x" / "model_plan.json").read_text() == "{}" and live.is_dir()


def test_pipeline_removes_stale_stage_dirs(tmp_path):
    root = tmp_path / "run"
    stale = root / f".first.tmp-{dead_pid()}-0123abcd"
    stale.mkdir(parents=True)
    p = Pipeline(root, progress=lambda _: None)
    p.stage("first", {}, lambda d: (d / "a.txt").write_text("a") and {})
    assert sorted(q.name for q in root.iterdir()) == ["first"]


def test_artifacts_follow_the_umask(models, tmp_path):
    old = os.umask(0o022)
    try:
        compile_model(models["a"], tmp_path / "out")
        with atomic_dir(tmp_path / "stage") as d:
            write_atomic(d / "f.json", "{}")
    finally:
        os.umask(old)
    for path in [tmp_path / "out", *(tmp_path / "out").rglob("*"), tmp_path / "stage", tmp_path / "stage" / "f.json"]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o755 if path.is_dir() else 0o644), f"{path}: {oct(mode)}"


def _fake_measure(job):
    if job.model.stem == "bad":
        raise ToolchainError(f"{job.model} is not a TFLite flatbuffer", "give a .tflite")
    return {"model": job.model.stem, "board": job.board, "kernels": job.kernels, "bit_exact": True, "macs": 10,
            "instructions": 100, "instr_per_mac": 10.0, "est_ms": 0.1, "clock_mhz": 25.0, "arena": 1, "stack": 2,
            "flash": 3, "weights": 4, "error": None}


def test_bench_records_a_failed_row_and_goes_on(tmp_path, monkeypatch, capsys):
    from toolchain.pipeline import bench

    monkeypatch.setattr(bench, "measure", _fake_measure)  # the pool's workers are forked: they see it
    good, bad = tmp_path / "good.tflite", tmp_path / "bad.tflite"
    good.write_bytes(b"x")
    bad.write_bytes(b"not a model")
    csv_path, json_path = tmp_path / "b.csv", tmp_path / "b.json"
    rc = main(["bench", str(bad), str(good), "--out", str(tmp_path / "w"), "--csv", str(csv_path),
               "--json", str(json_path)])
    assert rc == 1
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["model"] for r in rows] == ["bad", "good"]
    assert "not a TFLite flatbuffer" in rows[0]["error"] and rows[0]["bit_exact"] == ""
    assert rows[1]["error"] == "" and rows[1]["bit_exact"] == "True"
    assert len(json.loads(json_path.read_text())) == 2
    assert "error: bad on mps2-an386 (dsp): " in capsys.readouterr().err  # the board's default path


@pytest.mark.emulator
def test_bench_with_a_corrupt_model_among_good_ones(tmp_path, models, capsys):
    bad = tmp_path / "corrupt.tflite"
    bad.write_bytes(models["b"].read_bytes()[:100])
    csv_path = tmp_path / "b.csv"
    rc = main(["bench", str(models["b"]), str(bad), "--out", str(tmp_path / "w"), "--csv", str(csv_path)])
    assert rc == 1
    rows = {r["model"]: r for r in csv.DictReader(csv_path.open())}
    assert rows["b"]["bit_exact"] == "True" and rows["b"]["error"] == ""
    assert rows["corrupt"]["error"] and rows["corrupt"]["instructions"] == ""


def test_interrupt_flag_stops_the_pipeline_at_the_next_stage_boundary(tmp_path):
    calls = []
    p = Pipeline(tmp_path / "run", progress=lambda _: None)
    p.stage("first", {}, lambda d: calls.append("first") or {})
    p.interrupted = True
    with pytest.raises(KeyboardInterrupt):
        p.stage("second", {}, lambda d: calls.append("second") or {})
    assert calls == ["first"] and not (tmp_path / "run" / "second").exists()


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals need the main thread")
def test_a_swallowed_ctrl_c_still_stops_the_pipeline(tmp_path):
    calls = []

    def swallows_sigint(d):
        calls.append("first")
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt:
            pass  # as TensorFlow sometimes does
        (d / "a.txt").write_text("finished anyway")
        return {}

    before = signal.getsignal(signal.SIGINT)
    p = Pipeline(tmp_path / "run", progress=lambda _: None)
    with pytest.raises(KeyboardInterrupt):
        with p.interruptible():
            p.stage("first", {}, swallows_sigint)
            p.stage("second", {}, lambda d: calls.append("second") or {})
    assert calls == ["first"]
    assert not (tmp_path / "run" / "first").exists()  # the interrupted stage was not committed
    assert signal.getsignal(signal.SIGINT) is before


def test_cli_pipeline_interrupted_exits_130_with_one_line(tmp_path, monkeypatch, capsys):
    from toolchain.pipeline.run import PipelineRun

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(PipelineRun, "all", interrupted)
    recipe = Path(__file__).parents[1] / "models" / "ad.toml"
    assert main(["pipeline", str(recipe), "--out", str(tmp_path / "run")]) == 130
    assert capsys.readouterr().err == "interrupted; re-run to resume\n"


def test_unwritable_run_dir_says_cannot_write_not_resume(tmp_path, monkeypatch):
    from toolchain.pipeline import stages

    root = tmp_path / "run"

    def read_only(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(root / ".first.tmp-1-0123abcd"))

    monkeypatch.setattr(stages, "atomic_dir", read_only)
    p = Pipeline(root, progress=lambda _: None)
    with pytest.raises(ToolchainError) as err:
        p.stage("first", {}, lambda d: {})
    assert f"cannot write {root}: Read-only file system" in str(err.value)
    assert "resume" not in str(err.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_run_dir_real(tmp_path):
    root = tmp_path / "run"
    root.mkdir()
    root.chmod(0o555)
    try:
        with pytest.raises(ToolchainError, match=f"cannot write {root}: Permission denied"):
            Pipeline(root, progress=lambda _: None).stage("first", {}, lambda d: {})
    finally:
        root.chmod(0o755)
