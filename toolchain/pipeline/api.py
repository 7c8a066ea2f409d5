"""The stage API: compile, build, run (and compress), one function each, from typed artifact to typed artifact.

Both the `tinyml` subcommands (`compile`, `build`, `run`, `compress`) and `tinyml pipeline` (`run.py`) call these;
a CLI module parses, calls one of them, and prints.

  compile_stage(tflite)                 -> CompiledModel (C sources + ModelPlan)
  build_stage(CompiledModel, board)     -> FirmwareImage (ELF, sizes, embedded TestSet, ExitThreshold)
  run_stage(tflite, CompiledModel, FirmwareImage) -> DeviceRun (device vs LiteRT BUILTIN_REF, measured)
  deploy(tflite, board)                 -> DeviceRun (the three above: `tinyml run`, `tinyml bench`)
  compress_stage(model, dataset, specs) -> the compression stage table
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from toolchain.boards import Board
from toolchain.compiler.driver import CompiledModel, compile_model, model_inputs
from toolchain.compiler.exits import ExitThreshold
from toolchain.compiler.hostrun import check_host_target
from toolchain.compiler.targets import KERNEL_PATHS, REFERENCES  # noqa: F401  (REFERENCES: for the CLI)
from toolchain.errors import ToolchainError
from toolchain.firmware import (EEMBC_PROFILES, HARNESSES, STACK_MARGIN, WEIGHTS_IN,  # noqa: F401
                                FirmwareImage, arena_regions, build_firmware, check_fits, check_weights_in,
                                eembc_profile, main_ram_for_arena, write_testset)
from toolchain.pipeline.deploy import (DeviceRun, check_samples, check_timeout, exact_cycle_counts,
                                       exact_layer_counts, load_inputs)
from toolchain.recipe import Recipe
from toolchain.runners.protocol import RunResult

KERNEL_TARGETS = KERNEL_PATHS  # `--kernels` choices of `tinyml compile` and `tinyml run`


# -- compile -------------------------------------------------------------------------------------------------

def compile_stage(tflite: Path, out_dir: Path, *, target: str = "ref", early_exit: bool = False,
                  reference: str | None = None, host_check: bool = False, bands: str = "auto",
                  regions: list[tuple[str, int]] | None = None) -> CompiledModel:
    """`early_exit`: the outputs other than the final one are exits the generated code may return at.
    `host_check`: a host check (`check_stage`) follows, refused now for a path the host cannot run.
    `bands`: row bands for windowed layers (auto: where they lower the arena; all; none).
    `regions`: the RAM regions the arena may be split over, fastest first, as (name, bytes free) (see
    `arena_regions`); None: one arena in the main RAM, unchecked until the build."""
    if host_check:
        check_host_target(target)
    return compile_model(tflite, out_dir, target=target, early_exit=early_exit, reference=reference, bands=bands,
                         regions=regions)


def tflm_arena(tflite: Path):
    """TFLM's arena for the model from its recording allocator (head, total), or (None, why not)."""
    from toolchain.verify.tflm_memory import tflm_arena as measure

    return measure(tflite)


def op_table() -> tuple[list[list[str]], list[str], str]:
    """Every TFLite operator we compile: [op, ref, dsp, mve, in TFLM, constraints]; the builtin operators only
    tflite-micro has kernels for; and why TFLM's column is empty (tflite-micro not installed), if it is."""
    from toolchain.compiler.ops import OPS
    from toolchain.compiler.ops.variants import VARIANTS
    from toolchain.verify.tflm_memory import tflm_builtin_ops

    tflm, why = tflm_builtin_ops()

    def path(op: str, folders: tuple[str, ...]) -> str:
        return next((f"{f} variant" for f in folders if (op, f) in VARIANTS), "portable kernel")

    rows = [[name, "yes", path(name, ("dsp",)), path(name, ("mve", "dsp")),
             "-" if tflm is None else ("yes" if name in tflm else "no"), opdef.constraints]
            for name, opdef in sorted(OPS.items())]
    only_tflm = sorted(tflm - set(OPS)) if tflm is not None else []
    return rows, only_tflm, why


def check_stage(tflite: Path, compiled: CompiledModel, *, samples: int, seed: int = 0,
                exit_threshold: ExitThreshold = ExitThreshold.never()):
    """Run `samples` random inputs through the generated C on the host and compare with LiteRT BUILTIN_REF;
    returns the `CheckReport`."""
    from toolchain.verify.check import check_against_reference

    return check_against_reference(tflite, compiled.out_dir, samples=samples, seed=seed,
                                   exit_threshold=exit_threshold.int8)


# -- build ---------------------------------------------------------------------------------------------------

def random_batch(compiled: CompiledModel, samples: int, seed: int = 0) -> list[list[np.ndarray]]:
    """`samples` seeded random inputs for the model (int8 over the whole range)."""
    from toolchain.verify.check import random_inputs

    check_samples(samples)
    rng = np.random.default_rng(seed)
    return [random_inputs(compiled.plan.inputs, rng) for _ in range(samples)]


def input_batch(compiled: CompiledModel, inputs: np.ndarray) -> list[list[np.ndarray]]:
    """Samples [N, *input] of a single-input model as the batch to embed."""
    if len(compiled.plan.inputs) != 1:
        raise ToolchainError("--inputs supports single-input models only")
    if len(inputs) == 0:
        raise ToolchainError("--inputs hold no samples")
    return [[x.reshape(compiled.plan.inputs[0].shape)] for x in inputs]


def build_stage(compiled: CompiledModel, board: Board, build_dir: Path, *,
                batch: list[list[np.ndarray]] | None = None, samples: int = 4, seed: int = 0,
                labels: list[int] | None = None, exit_threshold: ExitThreshold | None = None,
                keep_testset: bool = False, dump_tensors: bool = False, weights_in: str = "flash",
                harness: str = "harness", eembc: str | None = None) -> FirmwareImage:
    """Embed the test set (`batch`, else `samples` seeded random inputs; with `keep_testset` a test set already in
    the model directory stays), check the memories, build the image. `exit_threshold` None: the harness's int8 0.
    `dump_tensors`: the harness prints every layer's output. `weights_in`: flash, or ram (copied at start-up).
    `harness` "eembc": the EEMBC runner mode instead (profile `eembc`, None: deduced), which embeds no test set."""
    board.check_kernels(compiled.plan.target)
    testset_bytes = 0
    if harness == "eembc":
        eembc_profile(compiled.plan, eembc)  # an input no benchmark takes: refused before anything is built
    elif not (keep_testset and (compiled.out_dir / "testset.c").exists()):
        batch = batch if batch is not None else random_batch(compiled, samples, seed)
        extra = {} if exit_threshold is None else {"exit_threshold": exit_threshold}
        testset_bytes = write_testset(compiled.out_dir, batch, labels, **extra)
    check_fits(compiled.plan, board, testset_bytes, weights_in)
    return build_firmware(compiled.out_dir, board, build_dir, dump_tensors=dump_tensors, weights_in=weights_in,
                          harness=harness, eembc=eembc)


# -- run -----------------------------------------------------------------------------------------------------

def model_input_spec(tflite: Path):
    """The single input of a .tflite, typed (`TensorIO`), read without compiling."""
    specs = model_inputs(tflite)
    if len(specs) != 1:
        raise ToolchainError(f"--inputs supports single-input models only; {tflite} has {len(specs)}")
    return specs[0]


def read_inputs(path: Path, tflite: Path, samples: int | None) -> np.ndarray:
    """Samples from a .npy, checked against the model's input (shape, dtype, finite values) and quantized if float;
    the first `samples` of them (all when None). Fails before anything is compiled."""
    return load_inputs(path, model_input_spec(tflite), samples)


def check_emulator(board: Board, emulator: str, exact: bool = False) -> None:
    """A one-line error, before any work, unless `emulator` (qemu, or renode: board.toml [renode] and `renode` on
    PATH) can run `board` (with `exact`: QEMU's TCG plugin)."""
    board.check_emulated(emulator)
    if emulator == "renode":
        from toolchain.runners.renode import renode_executable

        if exact:
            raise ToolchainError("--exact counts instructions with a QEMU TCG plugin: not under Renode",
                                 "leave out --exact, or run with --emulator qemu on a QEMU board")
        renode_executable()


def run_stage(tflite: Path, compiled: CompiledModel, image: FirmwareImage, *, exact: bool = False,
              timeout: float = 300.0, work_dir: Path | None = None, emulator: str = "qemu") -> DeviceRun:
    """Run the image in QEMU (or, `emulator` "renode", in Renode: SysTick ticks only, with the .resc written beside
    the ELF) and compare every embedded sample with LiteRT BUILTIN_REF on the same inputs; with a TM_DUMP_TENSORS
    image, also every layer's output with LiteRT's intermediate tensors. `exact`: the TCG plugin counts every
    instruction per layer and, on a core with a cycle table, the estimated cycles (no wait states)."""
    from toolchain.runners.cycles import cycle_model
    from toolchain.runners.plugin.icount import build_plugin, marker_address, plugin_args, read_profile
    from toolchain.runners.qemu import run_qemu
    from toolchain.runners.renode import run_renode

    check_timeout(timeout)
    check_emulator(image.board, emulator, exact)
    extra, counts_file = [], Path(work_dir or image.elf.parent) / "icount.txt"
    if exact:
        counts_file.unlink(missing_ok=True)
        extra = plugin_args(build_plugin(counts_file.parent / "plugin"), marker_address(image.elf), counts_file,
                            classes=True)
    if emulator == "renode":
        run = run_renode(image.elf, image.board, timeout=timeout, work_dir=work_dir)
    else:
        run = run_qemu(image.elf, image.board, timeout=timeout, extra_args=extra)
    exact_layers = exact_cycles = cycle_classes = None
    if exact:
        profile = read_profile(counts_file)
        exact_layers = exact_layer_counts([h[0] for h in profile.hits], run)
        model = cycle_model(image.board.cpu)
        if model is not None:
            exact_cycles, cycle_classes = exact_cycle_counts(profile, run, model)
    return device_run(tflite, compiled, image, run, exact_layers=exact_layers, exact_cycles=exact_cycles,
                      cycle_classes=cycle_classes, emulator=emulator)


def device_run(tflite: Path, compiled: CompiledModel, image: FirmwareImage, run: RunResult, *,
               exact_layers=None, exact_cycles=None, cycle_classes=None, emulator: str = "qemu") -> DeviceRun:
    """What a device (emulated or real) reported for `image`, compared with LiteRT on the samples it embeds;
    `emulator`: the one that ran it (qemu, renode) or "board" for a real board."""
    from toolchain.verify.device import compare_run

    batch, threshold = image.testset.batch, image.exit_threshold
    if len(run.samples) != len(batch):
        raise ToolchainError(f"the firmware reported {len(run.samples)} samples, {len(batch)} were embedded")
    compared = compare_run(tflite, compiled.plan, run, batch, threshold.int8)
    return DeviceRun(image.board, compiled.plan, run, image.sizes, compared.mismatches, compared.reference_outputs,
                     exact_layers, threshold, compared.expected_exits, compared.tensors, exact_cycles, cycle_classes,
                     emulator)


def deploy(tflite: Path, board: Board, out_dir: Path, *, inputs: np.ndarray | None = None, samples: int = 4,
           labels: list[int] | None = None, seed: int = 0, timeout: float = 300.0, exact: bool = False,
           early_exit: bool = False, exit_threshold: ExitThreshold = ExitThreshold.never(),
           dump_tensors: bool = False, kernels: str | None = None, reference: str | None = None,
           bands: str = "auto", arena_region: str | None = None, weights_in: str = "flash",
           emulator: str = "qemu", progress: Callable[[str], None] = print) -> DeviceRun:
    """compile -> embed -> build -> run -> compare. `inputs`: samples [N, *input] (see `read_inputs`), else
    `samples` seeded random ones. `dump_tensors`: the firmware prints every layer's output, each compared.
    `kernels`: the kernel path (default: the board's); `reference`: whose rounding to reproduce (default litert;
    tflm with the cmsis-nn kernels, which round as tflite-micro does). The arena is split over the board's RAM
    regions (`arena_regions`: the main RAM first, then each extra one), or lies whole in `arena_region`; a model too
    big for every placement is refused before anything is written. `weights_in`: flash, or ram (copied at
    start-up; they then take main RAM from the arena). `emulator`: qemu, or renode (a board with a [renode] table,
    `renode` on PATH: checked first; ticks and time only, no instruction counts)."""
    check_emulator(board, emulator, exact)
    compiled, image = prepare_image(tflite, board, out_dir, inputs=inputs, samples=samples, labels=labels, seed=seed,
                                    timeout=timeout, early_exit=early_exit, exit_threshold=exit_threshold,
                                    dump_tensors=dump_tensors, kernels=kernels, reference=reference, bands=bands,
                                    arena_region=arena_region, weights_in=weights_in, progress=progress)
    if emulator == "renode":
        from toolchain.runners.renode import SCRIPT

        progress(f"running {image.samples} sample(s) in Renode ({board.renode.platform}; script "
                 f"{image.elf.parent / SCRIPT})")
    else:
        progress(f"running {image.samples} sample(s) in qemu-system-arm -M {board.qemu_machine}")
    return run_stage(tflite, compiled, image, exact=exact, timeout=timeout, emulator=emulator)


def prepare_image(tflite: Path, board: Board, out_dir: Path, *, inputs: np.ndarray | None = None, samples: int = 4,
                  labels: list[int] | None = None, seed: int = 0, timeout: float = 300.0, early_exit: bool = False,
                  exit_threshold: ExitThreshold = ExitThreshold.never(), dump_tensors: bool = False,
                  kernels: str | None = None, reference: str | None = None, bands: str = "auto",
                  arena_region: str | None = None, weights_in: str = "flash", harness: str = "harness",
                  eembc: str | None = None,
                  progress: Callable[[str], None] = print) -> tuple[CompiledModel, FirmwareImage]:
    """compile -> embed -> build, for `deploy` (which runs the image in an emulator) and `flash`; the arguments
    are deploy's. Every argument is checked before the compiler starts."""
    out_dir = Path(out_dir)
    kernels = kernels or board.kernels
    reference = reference or ("tflm" if kernels == "cmsis-nn" else "litert")
    board.check_kernels(kernels)
    check_weights_in(weights_in)
    if arena_region is not None:
        board.region(arena_region)
    if inputs is None:
        check_samples(samples)
    check_timeout(timeout)
    progress(f"compiling {tflite} for the {kernels} kernels")
    # A board with one RAM keeps one arena, checked after compiling (check_fits) as before regions existed.
    split = bool(board.extra_ram) or arena_region is not None
    regions = arena_regions(board, arena_region) if split else None
    compiled = compile_stage(tflite, out_dir / "c", target=kernels, early_exit=early_exit, reference=reference,
                             bands=bands, regions=regions)
    weights_ram = compiled.plan.weights_bytes if weights_in == "ram" else 0
    if split and arena_region in (None, "ram") and \
            (compiled.plan.arena_regions or {}).get("ram", 0) > main_ram_for_arena(board, weights_ram):
        # the weights in RAM leave the arena less of it than the first split assumed: split again
        regions = arena_regions(board, arena_region, weights_in_ram=weights_ram)
        compiled = compile_stage(tflite, out_dir / "c", target=kernels, early_exit=early_exit, reference=reference,
                                 bands=bands, regions=regions)
    if split:
        parts = ", ".join(f"{name} {size:,} B" for name, size in (compiled.plan.arena_regions or {}).items())
        progress(f"arena {compiled.plan.arena_bytes:,} B: {parts}")
    batch = random_batch(compiled, samples, seed) if inputs is None else input_batch(compiled, inputs)
    progress(f"building firmware for {board.name} ({board.cpu})")
    image = build_stage(compiled, board, out_dir / f"fw-{board.name}", batch=batch, labels=labels,
                        exit_threshold=exit_threshold, dump_tensors=dump_tensors, weights_in=weights_in,
                        harness=harness, eembc=eembc)
    return compiled, image


@contextmanager
def _flashed(tflite: Path, board: Board, out_dir: Path, *, probe: str, probe_options, port: str | None, baud: int,
             timeout: float, progress: Callable[[str], None], **build):
    """The probe, its tool and the serial port checked and the port opened before the compiler starts (so no line
    of the reset board is lost), then compile -> build (`build`: `prepare_image`'s keywords) -> flash with `probe`;
    yields (open port, its name, compiled model, image), the port closed after."""
    from toolchain.probes import check_probe, flash_commands, run_probe
    from toolchain.runners.serial_port import open_port, resolve_port

    check_timeout(timeout)
    check_probe(probe, board, probe_options)
    port = resolve_port(port)
    with open_port(port, baud) as ser:
        compiled, image = prepare_image(tflite, board, out_dir, timeout=timeout, progress=progress, **build)
        progress(f"flashing {image.elf.name} onto {board.name} with {probe}")
        ser.reset_input_buffer()
        run_probe(flash_commands(probe, image.elf, board, probe_options), probe, board)
        yield ser, port, compiled, image


def flash(tflite: Path, board: Board, out_dir: Path, *, probe: str, probe_options, port: str | None,
          baud: int = 115200, timeout: float = 300.0, progress: Callable[[str], None] = print,
          **build) -> DeviceRun:
    """compile -> embed -> build -> flash with `probe` -> read the board's UART -> compare with LiteRT (see
    `_flashed`; `build`: the keyword arguments of `prepare_image`)."""
    from toolchain.runners.protocol import check_finished, parse
    from toolchain.runners.serial_port import read_until_exit

    with _flashed(tflite, board, out_dir, probe=probe, probe_options=probe_options, port=port, baud=baud,
                  timeout=timeout, progress=progress, **build) as (ser, port, compiled, image):
        progress(f"reading the results from {port} ({baud} 8N1)")
        log = read_until_exit(ser, timeout, board.name)
    Path(out_dir, "uart.log").write_text(log)
    return device_run(tflite, compiled, image, check_finished(parse(log), board.name), emulator="board")


@dataclass(frozen=True)
class EembcCheck:
    """`flash_eembc`'s session: what the firmware answered, and its int8 outputs against LiteRT's."""
    name: str
    profile: str
    samples: int
    exact: int  # samples whose int8 outputs equal LiteRT BUILTIN_REF's
    us_per_inference: list[float]  # m-lap-us differences (microseconds on silicon; instructions under QEMU)
    image: FirmwareImage


def flash_eembc(tflite: Path, board: Board, out_dir: Path, *, probe: str, probe_options, port: str | None,
                baud: int = 115200, timeout: float = 60.0, profile: str | None = None, samples: int = 2,
                seed: int = 0, progress: Callable[[str], None] = print, **build) -> EembcCheck:
    """Build the EEMBC runner-mode firmware, flash it, and check it over the runner's own protocol as the
    EnergyRunner would: name, profile, `samples` random inputs loaded in `db` lines, `infer 1 1`, each int8 output
    compared with LiteRT's. The board is then left ready for the EnergyRunner."""
    from toolchain.runners.eembc import EembcDevice, host_bytes
    from toolchain.verify.reference import ReferenceModel

    with _flashed(tflite, board, out_dir, probe=probe, probe_options=probe_options, port=port, baud=baud,
                  timeout=timeout, progress=progress, samples=1, harness="eembc", eembc=profile,
                  **build) as (ser, port, compiled, image):
        device = EembcDevice.on_port(ser, port, timeout=timeout)
        device.wait_boot()
        name, answered = device.name(), device.profile()
        spec, reference = compiled.plan.inputs[0], ReferenceModel(tflite)
        exact, laps = 0, []
        for x in random_batch(compiled, samples, seed):
            x = x[0]
            values = spec.scale * (x.astype(np.float32) - spec.zero_point) if answered == "ad01" else x
            device.load(host_bytes(answered, values))
            laps.append(device.infer(1, 1).us_per_inference)
            expected = reference.run([x])[0].reshape(-1)
            exact += device.quantized_results() == tuple(int(v) for v in expected)
    return EembcCheck(name, answered, samples, exact, laps, image)


def platformio_project(model: Path, board: Board, out: Path, *, kernels: str | None = None, samples: int = 4,
                       seed: int = 0, platform: str | None = None, progress: Callable[[str], None] = print):
    """A PlatformIO project for `board` from a .tflite (compiled here for `kernels`, default the board's) or a
    compiled model directory, its stack sized from a build made here with our CMake (the bound of the same code);
    `out` written whole (see `export.platformio.export_platformio`)."""
    import tempfile

    from toolchain.export.platformio import board_id, check_exportable, check_kernels, export_platformio

    board_id(board)  # no PlatformIO id: refused before any work
    if not model.exists():
        raise ToolchainError(f"{model} does not exist", "give an int8 .tflite or a `tinyml compile` directory")
    with tempfile.TemporaryDirectory(prefix="tinyml-pio-") as tmp:
        work = Path(tmp)
        if model.is_dir():
            if kernels:
                raise ToolchainError("--kernels applies to a .tflite only: the directory is compiled already")
            check_exportable(model, board)
            compiled = load_compiled(model)
        else:
            kernels = kernels or board.kernels
            check_kernels(board, kernels)
            progress(f"compiling {model} for the {kernels} kernels")
            compiled = compile_stage(model, work / "c", target=kernels,
                                     regions=arena_regions(board) if board.extra_ram else None)
            check_exportable(compiled.out_dir, board)
        progress(f"building firmware for {board.name} with CMake (for the stack bound)")
        image = build_stage(compiled, board, work / "fw", samples=samples, seed=seed, keep_testset=True)
        return export_platformio(compiled.out_dir, board, out, stack_size=image.sizes.stack_reserved,
                                 platform=platform)


# -- compress ------------------------------------------------------------------------------------------------

def compress_specs(recipe: Recipe | None, stages: str | list[str] | None = None, epochs: int | None = None) -> list:
    """The compression stages to run: `stages` (names, e.g. "prune,quantize") or else the recipe's [compress]
    stages, with the recipe's `[compress.<stage>]` option tables (every registered stage) or defaults;
    `epochs` overrides every stage's fine-tuning epochs."""
    from toolchain.compress import recipe_section  # noqa: F401  (registers the recipe's [compress] section)
    from toolchain.compress.stages import STAGES, StageSpec, parse_stages

    section = recipe.section("compress") if recipe is not None else None
    if section is not None and stages is None:
        specs = section.stage_specs()
    else:
        options = {name: getattr(section, name, {}) for name in STAGES} if section is not None else {}
        specs = parse_stages(stages or [], options)
    if not specs:
        raise ToolchainError("no compression stages given", "set [compress] stages = [...] or pass --stages")
    if epochs is not None:
        specs = [StageSpec(s.kind, {**s.options, "epochs": epochs, **({"teacher_epochs": epochs}
                                                                      if s.kind == "distill" else {})})
                 for s in specs]
    return specs


def compress_dataset(recipe: Recipe | None, dataset: str | None = None):
    """The dataset to compress on: `dataset` by name (with the recipe's dataset seed), else the recipe's."""
    if dataset is not None:
        from toolchain.data import load

        return load(dataset, seed=recipe.dataset.seed) if recipe is not None else load(dataset)
    from toolchain.train.loop import load_dataset

    return load_dataset(recipe)


def load_float_model(path: Path):
    """A saved .keras model, or the model of a `tinyml train` run directory."""
    from toolchain.compress.graph import load_keras

    return load_keras(path)


def compress_stage(model, dataset, specs: list, out_dir: Path, *, recipe: Recipe | None = None,
                   batch_size: int | None = None, seed: int | None = None, eval_samples: int | None = None,
                   progress: Callable[[str], None] = print) -> list:
    """Run the compression `specs` on `model`; returns the stage table rows. Settings not given come from the
    recipe (batch size: [compress] else [train]; seed: [train]; eval samples: [compress]; calibration samples:
    [target]; the exit loss weight when the recipe has an exit), else the defaults."""
    from toolchain.compiler.arena import arena_bytes
    from toolchain.compress.stages import compress
    from toolchain.pipeline import target  # noqa: F401  (registers [target])
    from toolchain.verify.int8 import predict_tflite

    kwargs = {}
    if recipe is not None:
        section = recipe.section("compress")
        kwargs = {"batch_size": section.batch_size or recipe.train.batch_size, "seed": recipe.train.seed,
                  "eval_samples": section.eval_samples,
                  "calibration_samples": recipe.section("target").calibration_samples,
                  "exit_weight": recipe.exit.loss_weight if recipe.exit.style != "none" else None}
    given = {"batch_size": batch_size, "seed": seed, "eval_samples": eval_samples}
    kwargs.update({k: v for k, v in given.items() if v is not None})
    return compress(model, dataset, specs, out_dir, arena_estimator=arena_bytes, int8_runner=predict_tflite,
                    progress=progress, **kwargs)


def format_stage_table(results: list, title: str) -> str:
    from toolchain.compress.table import format_rows

    return format_rows(results, title=title)


def exit_threshold(probability: float) -> ExitThreshold:
    """Leave at an exit when its top probability >= `probability` (1.0: never)."""
    return ExitThreshold.of(probability)


def load_compiled(model_dir: Path) -> CompiledModel:
    """A directory written by `compile_stage` (`tinyml compile`)."""
    return CompiledModel.load(model_dir)
