"""The stage runner: skips what is up to date, reruns what changed, never leaves half-written stages."""
import json

import pytest

from toolchain.errors import ToolchainError
from toolchain.pipeline.stages import Pipeline


def make(tmp_path, calls, fail_at=None, value=1):
    p = Pipeline(tmp_path / "run", progress=lambda _: None)

    def first(d):
        calls.append("first")
        (d / "a.txt").write_text(f"value {value}")
        return {"value": value}

    def second(d):
        calls.append("second")
        if fail_at == "second":
            (d / "partial.txt").write_text("half")
            raise RuntimeError("boom")
        (d / "b.txt").write_text((p.root / "first" / "a.txt").read_text() + "!")
        return {"ok": True}

    a = p.stage("first", {"value": value}, first)
    b = p.stage("second", {}, second)
    return a, b


def test_second_run_is_a_no_op(tmp_path):
    calls = []
    make(tmp_path, calls)
    a, b = make(tmp_path, calls)
    assert calls == ["first", "second"]
    assert a.cached and b.cached and b.metrics == {"ok": True}


def test_changed_settings_rerun_that_stage_and_downstream(tmp_path):
    calls = []
    make(tmp_path, calls)
    make(tmp_path, calls, value=2)
    assert calls == ["first", "second", "first", "second"]
    assert (tmp_path / "run" / "second" / "b.txt").read_text() == "value 2!"


def test_tampered_artifact_is_rebuilt(tmp_path):
    calls = []
    make(tmp_path, calls)
    (tmp_path / "run" / "second" / "b.txt").write_text("edited")
    make(tmp_path, calls)
    assert calls == ["first", "second", "second"]


def test_failure_names_the_stage_keeps_earlier_and_resumes(tmp_path):
    calls = []
    with pytest.raises(ToolchainError, match="stage 'second' failed: RuntimeError: boom"):
        make(tmp_path, calls, fail_at="second")
    assert (tmp_path / "run" / "first" / "a.txt").exists()
    assert not (tmp_path / "run" / "second").exists()  # nothing half-written
    make(tmp_path, calls)
    assert calls == ["first", "second", "second"]  # resumed at the failed stage
    manifest = json.loads((tmp_path / "run" / "second" / "manifest.json").read_text())
    assert manifest["files"].keys() == {"b.txt"}


def test_source_hash_follows_the_code(tmp_path, monkeypatch):
    from toolchain.pipeline import stages

    monkeypatch.setattr(stages, "REPO", tmp_path)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    before = stages.source_hash("pkg")
    assert stages.source_hash("pkg") == before
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    assert stages.source_hash("pkg") != before
