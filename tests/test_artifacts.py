"""Typed artifacts between stages save and load themselves (round trips), and a CLI module parses, calls the stage
API and prints: it does not reach into the stages' internals."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

import op_models as om
from conftest import convert
from toolchain.boards import get_board
from toolchain.compiler.driver import CompiledModel, compile_model
from toolchain.compiler.exits import NEVER, ExitThreshold
from toolchain.compiler.model_plan import PLAN_FILE, ModelPlan, TensorIO
from toolchain.errors import ToolchainError
from toolchain.firmware import FirmwareImage, FirmwareSizes, TestSet, write_testset
from toolchain.stackbound import Depth, StackBound
from toolchain.pipeline.deploy import DeviceRun
from toolchain.runners.protocol import parse
from toolchain.verify.check import Mismatch
from toolchain.verify.tensors import LayerDiff, TensorComparison

CLI = Path(__file__).resolve().parents[1] / "toolchain" / "cli"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, keras) -> tuple[Path, CompiledModel]:
    d = tmp_path_factory.mktemp("artifacts")
    model = om.two_outputs()
    tflite = convert(model, om.representative(model.input_shape[1:]), d / "m.tflite")
    return tflite, compile_model(tflite, d / "c", early_exit=True)


def test_model_plan_round_trips_through_its_json(compiled, tmp_path):
    _, result = compiled
    plan = result.plan
    assert isinstance(plan.inputs[0], TensorIO) and plan.inputs[0].offset is not None
    assert json.loads((result.out_dir / PLAN_FILE).read_text()) == plan.to_dict()
    assert ModelPlan.from_dict(plan.to_dict()) == plan
    assert CompiledModel.load(result.out_dir) == result
    plan.save(tmp_path)
    assert ModelPlan.load(tmp_path) == plan
    copy = result.save(tmp_path / "copy")
    assert copy.out_dir == tmp_path / "copy" and copy.plan == plan and (copy.out_dir / "model.c").is_file()
    with pytest.raises(Exception):  # frozen
        plan.arena_bytes = 0


def test_a_bad_plan_file_is_one_error(tmp_path):
    with pytest.raises(ToolchainError, match="is not a compiled model"):
        ModelPlan.load(tmp_path)
    (tmp_path / PLAN_FILE).write_text('{"source": "x"}')
    with pytest.raises(ToolchainError, match="is not a model plan this toolchain wrote") as err:
        ModelPlan.load(tmp_path)
    assert "\n" not in err.value.message


def test_exit_threshold_is_one_value():
    assert ExitThreshold.of(0.5) == ExitThreshold(0.5, 0)
    assert ExitThreshold.never().int8 == NEVER and not ExitThreshold.never().exits
    assert ExitThreshold.of(0.9).exits
    for t in (ExitThreshold.of(0.9), ExitThreshold.from_int8(-5), ExitThreshold.never()):
        assert ExitThreshold.from_dict(json.loads(json.dumps(t.to_dict()))) == t
    with pytest.raises(ToolchainError, match="within"):
        ExitThreshold.from_int8(300)


def test_test_set_round_trips_and_carries_the_threshold(compiled, tmp_path):
    _, result = compiled
    model = result.save(tmp_path / "c")
    rng = np.random.default_rng(0)
    batch = [[rng.integers(-128, 128, size=i.shape, dtype=np.int8) for i in model.plan.inputs] for _ in range(3)]
    threshold = ExitThreshold.of(0.75)
    write_testset(model.out_dir, batch, [1, 2, 3], threshold)
    loaded = TestSet.load(model.out_dir)
    assert loaded.samples == 3 and loaded.labels == (1, 2, 3) and loaded.exit_threshold == threshold
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(loaded.batch, batch))
    assert f"tm_testset_exit_threshold = {threshold.int8};" in (model.out_dir / "testset.c").read_text()
    assert "threshold" not in np.load(model.out_dir / "testset.npz").files  # only in the typed artifact's JSON


def test_firmware_image_round_trips(compiled, tmp_path):
    _, result = compiled
    model = result.save(tmp_path / "c")
    write_testset(model.out_dir, [[np.zeros(i.shape, np.int8) for i in model.plan.inputs]],
                  exit_threshold=ExitThreshold.never())
    build = tmp_path / "build"
    build.mkdir()
    for suffix in (".elf", ".bin", ".hex", ".map"):
        (build / f"image{suffix}").write_bytes(suffix.encode())
    bound = StackBound(Depth(500, ("Reset_Handler", "main")), Depth(108, ("frame 108", "SysTick_Handler")),
                       Depth(400, ("tm_model_run",)), ("cb",))
    sizes = FirmwareSizes({"model weights": 100, "kernels": 50}, {"arena": 64, "stack": 16384}, bound)
    image = FirmwareImage(build / "image.elf", get_board("mps2-an386"), sizes, TestSet.load(model.out_dir))
    saved = image.save(tmp_path / "stage")
    assert saved.elf == tmp_path / "stage" / "firmware.elf" and saved.elf.read_bytes() == b".elf"
    loaded = FirmwareImage.load(tmp_path / "stage")
    assert loaded == saved and loaded.samples == 1 and loaded.exit_threshold == ExitThreshold.never()
    assert loaded.sizes.flash_total == 150 and loaded.sizes.to_dict()["ram_total"] == 64 + 16384
    assert loaded.sizes.stack_bound == bound == StackBound.load(tmp_path / "stage") and bound.bytes == 608


def _log(plan: ModelPlan) -> str:
    out = bytes(max(o.offset + o.bytes for o in plan.outputs)).hex()
    layers = "\n".join(f"TM LAYER {layer.index} {layer.op} {layer.macs}" for layer in plan.layers)
    ticks = " ".join("7" for _ in plan.layers)
    return (f"TM BEGIN board=mps2-an386 marker_ticks=2\n{layers}\nTM SAMPLE 0 exit={len(plan.exits)} ticks=100 "
            f"cycles=0 out={out}\nTM LAYERTICKS 0 {ticks}\nTM STACK used=800 size=16384\nTM END status=0\n")


def test_device_run_round_trips(compiled, tmp_path):
    _, result = compiled
    plan = result.plan
    run = DeviceRun(get_board("mps2-an386"), plan, parse(_log(plan)),
                    FirmwareSizes({"model weights": 100}, {"arena": plan.arena_bytes}),
                    [Mismatch(0, plan.outputs[0].name, 1, 5, [2], [3], [4], 1.0)],
                    [[np.arange(o.bytes, dtype=np.int8).reshape(o.shape) for o in plan.outputs]],
                    None, ExitThreshold.of(0.6), [len(plan.exits)],
                    TensorComparison(1, 3, [LayerDiff(0, 1, "CONV_2D", 4, "t", 2, 8, 3, [0], [1], [2])]))
    run.save(tmp_path)
    loaded = DeviceRun.load(tmp_path)
    for name in ("board", "plan", "run", "firmware", "mismatches", "exact_layers", "exit_threshold",
                 "expected_exits", "tensors"):
        assert getattr(loaded, name) == getattr(run, name), name
    assert all(np.array_equal(a, b) for a, b in zip(loaded.reference_outputs[0], run.reference_outputs[0]))
    assert loaded.to_json() == run.to_json() == json.loads((tmp_path / "run.json").read_text())
    assert loaded.summary()["exit_threshold"] == ExitThreshold.of(0.6).int8


# --- the CLI calls the stage API --------------------------------------------------------------------------------

# Stages a CLI module never imports: it calls `toolchain.pipeline` (the stage API, the pipeline) instead.
STAGE_INTERNALS = {"compiler", "compress", "train", "export", "verify", "firmware", "stackbound", "runners"}
# `tinyml train`, `evaluate`, `export` and `import` run the train/export stages, which have no stage function in
# the stage API yet: they may import train/export/compress/verify, but never the compiler, firmware or runners.
NOT_YET_IN_THE_API = {"train", "evaluate", "export", "import_onnx"}
NEVER_FROM_CLI = {"compiler", "firmware", "stackbound", "runners"}


def _toolchain_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("toolchain")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("toolchain"):
            found |= {f"{node.module}.{a.name}" if node.module == "toolchain" else node.module for a in node.names}
    return found


@pytest.mark.parametrize("path", sorted(CLI.glob("*.py")), ids=lambda p: p.stem)
def test_cli_modules_call_the_stage_api_not_the_stages(path):
    forbidden = NEVER_FROM_CLI if path.stem in NOT_YET_IN_THE_API else STAGE_INTERNALS
    bad = sorted(m for m in _toolchain_imports(path) if len(m.split(".")) > 1 and m.split(".")[1] in forbidden)
    assert not bad, f"cli/{path.name} imports {bad}: call toolchain.pipeline.api instead"


def test_the_stage_commands_use_the_stage_api():
    for name in ("compile", "build", "run", "compress"):
        assert "toolchain.pipeline.api" in _toolchain_imports(CLI / f"{name}.py") or \
            "toolchain.pipeline" in _toolchain_imports(CLI / f"{name}.py"), name
