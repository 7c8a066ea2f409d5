"""Careless or hostile input is refused in one clear line (exit 2, no traceback) before any long work starts."""
from __future__ import annotations

import errno
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from toolchain.cli import main
from toolchain.cli.base import COMMANDS
from toolchain.errors import ToolchainError
from toolchain.recipe import load_recipe, parse_recipe
from toolchain.runners.protocol import parse

INPUT_SPEC = {"name": "x", "tensor": "x", "shape": [1, 4], "dtype": "int8", "bytes": 4, "scale": 0.1,
              "zero_point": 0}


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """Exit code and stderr of `tinyml argv` (argparse errors exit through SystemExit)."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.fixture
def no_build(monkeypatch):
    """Any compile or firmware build fails the test: the errors must come first."""
    import toolchain.compiler
    import toolchain.pipeline.api

    def forbidden(*args, **kwargs):
        pytest.fail("the model was compiled or built although the arguments were invalid")

    for module, name in ((toolchain.pipeline.api, "compile_model"), (toolchain.pipeline.api, "build_stage"),
                         (toolchain.compiler, "compile_model")):
        monkeypatch.setattr(module, name, forbidden)


@pytest.fixture
def fake_model(monkeypatch, tmp_path):
    """A .tflite path whose (single) input is int8 [1, 4], without reading a real model."""
    import toolchain.compiler.codegen
    import toolchain.compiler.frontend

    monkeypatch.setattr(toolchain.compiler.frontend, "load_tflite",
                        lambda path: SimpleNamespace(inputs=[0], input_names=["x"]))
    monkeypatch.setattr(toolchain.compiler.codegen, "describe_io", lambda g, t, name: dict(INPUT_SPEC))
    path = tmp_path / "m.tflite"
    path.write_bytes(b"unused")
    return path


# --- numeric options: argparse type= functions ---------------------------------------------------------------


@pytest.mark.parametrize("argv, option", [
    (["run", "m.tflite", "--samples", "0"], "--samples"),
    (["run", "m.tflite", "--samples", "-3"], "--samples"),
    (["run", "m.tflite", "--samples", "two"], "--samples"),
    (["run", "m.tflite", "--timeout", "nan"], "--timeout"),
    (["run", "m.tflite", "--timeout", "inf"], "--timeout"),
    (["run", "m.tflite", "--timeout", "0"], "--timeout"),
    (["run", "m.tflite", "--threshold", "7"], "--threshold"),
    (["run", "m.tflite", "--threshold", "nan"], "--threshold"),
    (["compile", "m.tflite", "-o", "x", "--check", "-1"], "--check"),
    (["compile", "m.tflite", "-o", "x", "--threshold", "-0.5"], "--threshold"),
    (["bench", "m.tflite", "--jobs", "0"], "--jobs"),
    (["bench", "m.tflite", "--samples", "0"], "--samples"),
    (["build", "dir", "--samples", "0"], "--samples"),
    (["train", "r.toml", "--epochs", "0"], "--epochs"),
    (["pipeline", "r.toml", "--samples", "0"], "--samples"),
    (["pipeline", "r.toml", "--epochs", "-1"], "--epochs"),
    (["evaluate", "run", "--thresholds", "0.5", "1.5"], "--thresholds"),
    (["export", "m.keras", "-o", "m.tflite", "--calibration", "c.npy", "--tolerance", "nan"], "--tolerance"),
    (["import", "m.onnx", "-o", "m.tflite", "--calibration", "c.npy", "--tolerance", "0"], "--tolerance"),
    (["compress", "--batch-size", "0"], "--batch-size"),
    (["demo", "--epochs", "0"], "--epochs"),
])
def test_numeric_options_are_checked_when_parsed(argv, option, capsys, no_build):
    code, err = run_cli(argv, capsys)
    assert code == 2
    assert f"argument {option}" in err and err.strip().splitlines()[-1].startswith("tinyml")


# --- tinyml run: --inputs, --samples, --json, before compile -------------------------------------------------


def save(tmp_path: Path, array, name="x.npy", **kwargs) -> Path:
    path = tmp_path / name
    np.save(path, array, **kwargs)
    return path


@pytest.mark.parametrize("array, message", [
    (np.zeros((0, 4), np.int8), "hold no samples"),
    (np.zeros((3, 4), np.int64), "are int64, expected int8 or float"),
    (np.zeros((3, 4), np.uint8), "are uint8, expected int8 or float"),
    (np.array([[0.1, np.nan, 0, 0], [0, 0, 0, 0]], np.float32), "NaN or infinite values (sample(s) 0)"),
    (np.array([[0, 0, 0, 0], [0, np.inf, 0, 0]], np.float64), "NaN or infinite values (sample(s) 1)"),
    (np.zeros((3, 5), np.int8), "expected [N, 4]"),
    (np.zeros((), np.int8), "expected [N, 4]"),
])
def test_run_refuses_bad_inputs_before_compiling(array, message, tmp_path, fake_model, no_build, capsys):
    out = tmp_path / "out"
    code, err = run_cli(["run", str(fake_model), "--inputs", str(save(tmp_path, array)), "--out", str(out)], capsys)
    assert code == 2 and message in err
    assert not out.exists()


def test_run_refuses_pickled_and_npz_inputs(tmp_path, fake_model, no_build, capsys):
    pickled = save(tmp_path, np.array([{"a": 1}, None], dtype=object), "obj.npy", allow_pickle=True)
    code, err = run_cli(["run", str(fake_model), "--inputs", str(pickled), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "cannot read inputs" in err and "allow_pickle" in err
    archive = tmp_path / "x.npz"
    np.savez(archive, x=np.zeros((2, 4), np.int8))
    code, err = run_cli(["run", str(fake_model), "--inputs", str(archive), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "is an .npz archive" in err
    assert not (tmp_path / "o").exists()


def test_run_samples_beyond_the_inputs_is_an_error(tmp_path, fake_model, no_build, capsys):
    x = save(tmp_path, np.zeros((3, 4), np.int8))
    code, err = run_cli(["run", str(fake_model), "--inputs", str(x), "--samples", "5", "--out", str(tmp_path / "o")],
                        capsys)
    assert code == 2 and "--samples 5 but inputs" in err and "hold 3 sample(s)" in err


@pytest.fixture
def deploy_calls(monkeypatch):
    """Record deploy()'s arguments and stop there (no build)."""
    import toolchain.pipeline.api

    calls = []

    def fake_deploy(model, board, out, **kwargs):
        calls.append(kwargs)
        raise ToolchainError("stopped by the test")

    monkeypatch.setattr(toolchain.pipeline.api, "deploy", fake_deploy)
    return calls


@pytest.mark.parametrize("extra, expected", [([], 6), (["--samples", "2"], 2)])
def test_run_runs_every_input_unless_samples_is_given(extra, expected, tmp_path, fake_model, deploy_calls, capsys):
    x = save(tmp_path, np.linspace(-1, 1, 24, dtype=np.float32).reshape(6, 4))
    code, err = run_cli(["run", str(fake_model), "--inputs", str(x), "--out", str(tmp_path / "o"), *extra], capsys)
    assert code == 2 and "stopped by the test" in err
    (call,) = deploy_calls
    assert call["samples"] == expected and len(call["inputs"]) == expected and call["inputs"].dtype == np.int8


def test_run_without_inputs_embeds_four_random_samples(tmp_path, fake_model, deploy_calls, capsys):
    run_cli(["run", str(fake_model), "--out", str(tmp_path / "o")], capsys)
    assert deploy_calls[0]["samples"] == 4 and deploy_calls[0]["inputs"] is None


def test_run_checks_the_json_destination_before_the_run(tmp_path, fake_model, no_build, capsys):
    code, err = run_cli(["run", str(fake_model), "--json", str(tmp_path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and f"--json {tmp_path} is a directory" in err
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, err = run_cli(["run", str(fake_model), "--json", str(blocker / "r.json"), "--out", str(tmp_path / "o")],
                        capsys)
    assert code == 2 and "is not a directory" in err
    assert not (tmp_path / "o").exists()


def test_run_out_that_is_a_file_is_refused(tmp_path, fake_model, no_build, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, err = run_cli(["run", str(fake_model), "--out", str(blocker)], capsys)
    assert code == 2 and "exists and is not a directory" in err


def test_deploy_checks_its_arguments_before_compiling(tmp_path, no_build):
    from toolchain.boards import get_board
    from toolchain.pipeline.api import deploy

    board = get_board("mps2-an386")
    for kwargs, message in (({"samples": 0}, "samples must be an integer >= 1"),
                            ({"timeout": float("nan")}, "finite number of seconds > 0"),
                            ({"timeout": -1.0}, "finite number of seconds > 0")):
        with pytest.raises(ToolchainError, match=message):
            deploy(tmp_path / "m.tflite", board, tmp_path / "o", progress=lambda msg: None, **kwargs)
    assert not (tmp_path / "o").exists()


# --- OSError from a command: one line with the path and the errno text -----------------------------------------


def test_compile_into_an_existing_file_is_one_line(tmp_path, capsys, no_build):
    target = tmp_path / "taken"
    target.write_text("")
    code, err = run_cli(["compile", str(tmp_path / "m.tflite"), "-o", str(target)], capsys)
    assert code == 2 and f"-o/--out {target} exists and is not a directory" in err


@pytest.mark.parametrize("exc, message", [
    (OSError(errno.ENOSPC, "No space left on device", "/x/y"), "error: cannot write /x/y: No space left on device"),
    (PermissionError(errno.EROFS, "Read-only file system", "/ro/out"), "error: cannot write /ro/out: Read-only"),
    (FileExistsError(errno.EEXIST, "File exists", "/a/b"), "error: cannot write /a/b: File exists"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "/a/c"), "error: cannot access /a/c: No such"),
])
def test_os_errors_escaping_a_command_are_one_line(exc, message, monkeypatch, capsys):
    def fail(args):
        raise exc

    monkeypatch.setattr(COMMANDS.get("boards"), "run", fail)
    code, err = run_cli(["boards"], capsys)
    assert code == 2 and err.startswith(message) and len(err.strip().splitlines()) == 1


def test_programming_errors_are_not_hidden(monkeypatch):
    def fail(args):
        raise KeyError("bug")

    monkeypatch.setattr(COMMANDS.get("boards"), "run", fail)
    with pytest.raises(KeyError):
        main(["boards"])


# --- the UART protocol ----------------------------------------------------------------------------------------

GOOD = ["TM BEGIN board=b marker_ticks=3", "TM LAYER 0 CONV_2D 100", "TM SAMPLE 0 exit=1 ticks=10 cycles=0 out=0aff",
        "TM LAYERTICKS 0 5 -", "TM STACK used=120 size=4096", "TM END status=0"]


def test_a_well_formed_log_parses():
    result = parse("\n".join(GOOD))
    assert result.layers == [("CONV_2D", 100)] and result.samples[0].output == b"\x0a\xff"
    assert parse("\n".join(GOOD).replace("out=0aff", "out=0012")).samples[0].output == b"\x00\x12"
    assert result.samples[0].layer_ticks == [5, None] and (result.stack_used, result.status) == (120, 0)


@pytest.mark.parametrize("bad, message", [
    ("TM LAYER 0 CONV_2D", "LAYER line has 2 field(s), expected at least 3"),
    ("TM LAYER 0 CONV_2D lots", "the MAC count is not an integer: 'lots'"),
    ("TM SAMPLE 0 ticks=10 cycles=0 out=00", "SAMPLE line without exit="),
    ("TM SAMPLE 0 exit=x ticks=10 cycles=0 out=00", "exit= is not an integer: 'x'"),
    ("TM SAMPLE zero exit=1 ticks=10 cycles=0", "the sample index is not an integer"),
    ("TM SAMPLE 0 exit=1 ticks=10 cycles=0 out=0g", "out= is not hex"),
    ("TM SAMPLE", "SAMPLE line has 0 field(s)"),
    ("TM LAYERTICKS 0 5 x", "a layer tick count is not an integer: 'x'"),
    ("TM STACK size=4096", "STACK line without used="),
    ("TM STACK used=12k size=4096", "used= is not an integer: '12k'"),
    ("TM END", "END line without status="),
    ("TM END status=ok", "status= is not an integer"),
])
def test_malformed_protocol_lines_are_protocol_errors(bad, message):
    lines = list(GOOD)
    kind = bad.split()[1]
    index = next(i for i, line in enumerate(lines) if line.split()[1] == kind)
    lines[index] = bad
    with pytest.raises(ToolchainError) as err:
        parse("\n".join(lines))
    assert err.value.message.startswith(f"protocol error: {message}")
    assert err.value.message.endswith(f"(line: {bad!r})")


def test_layerticks_before_any_sample_and_long_lines_are_truncated():
    with pytest.raises(ToolchainError, match=r"LAYERTICKS before any SAMPLE line"):
        parse("TM BEGIN board=b\nTM LAYERTICKS 0 1")
    long_line = "TM END status=" + "x" * 300
    with pytest.raises(ToolchainError) as err:
        parse(f"TM BEGIN board=b\n{long_line}")
    assert f"(line: {long_line[:117] + '...'!r})" in err.value.message


# --- recipes: types, finite numbers and ranges, when loaded ------------------------------------------------------

BASE = '[model]\nname = "kws"\n[dataset]\nname = "keywords"\n'


@pytest.mark.parametrize("snippet, message", [
    ("seed = -1\n", "[dataset] seed must be >= 0, got -1"),
    ('[dataset.options]\nsamples_per_class = "many"\n',
     "[dataset] options samples_per_class: expected int, got 'many'"),
    ("[dataset.options]\nsamples_per_class = 0\n", "[dataset] options samples_per_class must be >= 1, got 0"),
    ("[dataset.options]\nsnr_db = [5, nan]\n", "[dataset] options snr_db[1]: expected a finite number, got nan"),
    ("[dataset.options]\ncolour = 1\n", "[dataset] options: dataset 'keywords' has no option 'colour'"),
    ("[train]\nlr = nan\n", "[train] lr must be a finite number > 0, got nan"),
    ("[train]\nlr = inf\n", "[train] lr must be a finite number > 0, got inf"),
    ("[train]\nlr = -0.1\n", "[train] lr must be > 0, got -0.1"),
    ("[train]\nseed = -1\n", "[train] seed must be >= 0, got -1"),
    ("[train]\nepochs = 2.5\n", "[train] epochs: expected int, got 2.5"),
    ("[train]\nev_assist_fraction = 1.5\n", "[train] ev_assist_fraction must be in [0, 1], got 1.5"),
    ("[target]\ntimeout = nan\n", "[target] timeout: expected a finite number, got nan"),
    ("[exit]\nloss_weight = -inf\n", "[exit] loss_weight must be a finite number >= 0, got -inf"),
    ("[evaluate]\nthresholds = [0.5, 1.2]\n", "[evaluate] thresholds[1] must be in [0, 1], got 1.2"),
    ("[compress]\neval_samples = 0\n", "[compress] eval_samples must be >= 1, got 0"),
    ("[compress.prune]\nlr = nan\n", "[compress] [prune] lr must be a finite number > 0, got nan"),
    ("[compress.distill]\nteacher = \"wider:inf\"\n", "the width factor must be a finite number > 0"),
])
def test_recipe_values_need_a_type_and_a_range(snippet, message, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BASE + snippet)
    with pytest.raises(ToolchainError) as err:
        load_recipe(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value)


def test_recipe_replace_checks_ranges_too():
    recipe = parse_recipe(BASE, name="t")
    with pytest.raises(ToolchainError, match=r"\[train\] epochs must be >= 1, got 0"):
        recipe.replace("train", epochs=0)
    assert recipe.replace("train", epochs=3).train.epochs == 3


def test_non_utf8_recipe_is_one_clear_error(tmp_path, capsys):
    path = tmp_path / "latin1.toml"
    path.write_bytes(BASE.encode() + "# caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ToolchainError, match=r"latin1.toml: not UTF-8 text \(byte \d+: b'\\xe9'\)"):
        load_recipe(path)
    code, err = run_cli(["train", str(path)], capsys)
    assert code == 2 and "not UTF-8 text" in err


# --- the dataset cache ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 2], lambda b: b"garbage", lambda b: b""])
def test_a_corrupt_dataset_cache_is_regenerated(damage, tmp_path):
    from toolchain.data.common import cache_path, cached_arrays

    calls = []

    def generate():
        calls.append(1)
        return {"x_train": np.arange(1000, dtype=np.float32)}

    cached_arrays(tmp_path, "demo", {"v": 1}, 0, generate)
    path = cache_path(tmp_path, "demo", {"v": 1}, 0)
    path.write_bytes(damage(path.read_bytes()))
    arrays = cached_arrays(tmp_path, "demo", {"v": 1}, 0, generate)
    assert len(calls) == 2 and np.array_equal(arrays["x_train"], np.arange(1000))
    again = cached_arrays(tmp_path, "demo", {"v": 1}, 0, generate)  # rewritten whole: read back, not regenerated
    assert len(calls) == 2 and np.array_equal(again["x_train"], arrays["x_train"])
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary files left behind


# --- the pipeline summary: host int8 on the device's own samples ------------------------------------------------


def test_summary_sets_host_int8_on_the_device_samples_beside_the_device(tmp_path):
    import json

    from toolchain.pipeline.summary import summarize, summary_rows

    manifests = {
        "export": {"accuracy_float": {"final": 0.95}, "accuracy_int8": {"final": 0.931}},
        "compile": {"macs": 1000, "exits": [], "arena_bytes": 10},
        "build": {"flash_bytes": 100, "ram_bytes": 50},
        "run": {"board": "b", "samples": 64, "bit_exact": True, "device_accuracy": 1.0,
                "host_int8_accuracy_device_samples": 1.0, "instructions_mean": 5, "estimated_latency_ms": 1.0,
                "clock_hz": 25e6, "cpi": 1.0, "cpi_calibrated": False, "stack_bytes": 8},
    }
    for stage, metrics in manifests.items():
        (tmp_path / stage).mkdir()
        (tmp_path / stage / "manifest.json").write_text(json.dumps({"metrics": metrics}))
    rows = dict(summary_rows(summarize(tmp_path)))
    assert rows["accuracy final (float / int8 host / device on 64 test samples)"] == "95.0% / 93.1% / 100.0%"
    assert rows["accuracy final on the 64 device samples (int8 host / device)"] == "100.0% / 100.0%"
