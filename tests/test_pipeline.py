"""`tinyml pipeline` end to end on a tiny recipe: device predictions equal host int8 predictions sample
by sample, the summary has every figure, a second run does no work."""
from __future__ import annotations

import json

import numpy as np
import pytest

from toolchain.cli import main
from toolchain.compiler.model_plan import ModelPlan
from toolchain.errors import ToolchainError
from toolchain.recipe import parse_recipe

pytestmark = pytest.mark.emulator

TINY_KWS = """
[model]
name = "kws"

[exit]
style = "trecx"
ev_assist = true
threshold = {threshold}

[dataset]
name = "keywords"
seed = 0

[dataset.options]
samples_per_class = 4
cache_dir = "{cache}"

[train]
epochs = 1
batch_size = 16

[compress]
stages = ["structured"]

[compress.structured]
macs_reduction = 0.3
epochs = 1

[evaluate]
thresholds = [0.3, 0.6, 0.9]

[target]
board = "mps2-an386"
samples = 8
calibration_samples = 16
"""


@pytest.fixture(scope="module")
def tiny_recipe(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    path = root / "tiny.toml"
    path.write_text(TINY_KWS.format(threshold=0.3, cache=root / "data"))
    return path


def test_pipeline_end_to_end_and_cached(tiny_recipe, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["pipeline", str(tiny_recipe), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())

    # on-device predictions == host int8 predictions, sample by sample (same int8 inputs, LiteRT BUILTIN_REF)
    run = json.loads((out / "run" / "run.json").read_text())
    plan = ModelPlan.load(out / "compile" / "c")
    assert run["bit_exact"] and not run["mismatches"]
    device = json.loads((out / "run" / "manifest.json").read_text())["metrics"]["device_predictions"]
    host = []
    for sample in run["samples_detail"]:
        taken = plan.exits[sample["exit"]].output if sample["exit"] < len(plan.exits) else "final"
        host.append(int(np.argmax(sample["outputs"][taken])))
    assert device == host and len(device) == 8

    # every figure of the summary
    for key in ("float", "int8_host", "device"):
        assert summary["accuracy"][key], key
    assert summary["exit_rate"]["host_int8"] is not None and summary["exit_rate"]["device"] is not None
    assert summary["macs"]["exit"] < summary["macs"]["full"]
    assert summary["instructions"]["mean"] > 0 and summary["estimated_latency_ms"] > 0
    assert summary["arena_bytes"] > 0 and summary["stack_bytes"] > 0 and summary["flash_bytes"] > 0
    assert summary["stack_bound_bytes"] >= summary["stack_bytes"]
    for figure in ("accuracy exit_1", "accuracy final", "exit rate", "instructions / inference", "arena / stack"):
        assert figure in printed, figure
    for name in ("report.md", "report.html", "layer_instructions.png", "arena_plan.png",
                 "accuracy_vs_instructions.png"):
        assert (out / name).is_file(), name
    stages = [row["stage"] for row in summary["compression"]]
    assert stages == ["float", "structured"], stages
    assert summary["compression"][1]["MACs"] < summary["compression"][0]["MACs"]
    assert summary["macs"]["full"] == summary["compression"][1]["MACs"]
    assert "## Compression stages" in (out / "report.md").read_text()

    # a second run with nothing changed does no work
    assert main(["pipeline", str(tiny_recipe), "--out", str(out)]) == 0
    again = capsys.readouterr().out
    assert again.count("up to date, skipped") == 6 and "6 stages (6 up to date)" in again


def test_unknown_recipe_key_names_it_and_the_allowed_ones():
    with pytest.raises(ToolchainError, match="unknown key 'board_name'") as err:
        parse_recipe('[model]\nname = "kws"\n[dataset]\nname = "keywords"\n[target]\nboard_name = "x"\n')
    assert "board" in (err.value.hint or "") and "samples" in (err.value.hint or "")


def test_stage_failure_names_the_stage_and_keeps_earlier_ones(tiny_recipe, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    import toolchain.firmware as firmware

    def broken(*args, **kwargs):
        raise ToolchainError("the linker exploded")

    monkeypatch.setattr(firmware, "build_firmware", broken)
    monkeypatch.setattr("toolchain.pipeline.api.build_firmware", broken)
    assert main(["pipeline", str(tiny_recipe), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "stage 'build' failed: the linker exploded" in err
    for kept in ("train", "compress", "export", "compile"):
        assert (out / kept / "manifest.json").is_file(), kept
    assert not (out / "build").exists()


def test_bench_takes_a_recipe(tiny_recipe, tmp_path, capsys):
    """A recipe in `tinyml bench` is trained and exported through the pipeline's cached stages."""
    rc = main(["bench", str(tiny_recipe), "--boards", "mps2-an386", "--out", str(tmp_path / "b"),
               "--json", str(tmp_path / "b.json")])
    assert rc == 0
    (row,) = json.loads((tmp_path / "b.json").read_text())
    assert row["model"] == "tiny" and row["bit_exact"] and row["macs"] > 0
    assert (tmp_path / "b" / "tiny" / "export" / "manifest.json").is_file()
