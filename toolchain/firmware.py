"""Firmware images: the embedded test set, the CMake build, and a size report by part from the map file.

Typed artifacts: `TestSet` (the samples, labels and exit threshold embedded in testset.c) and `FirmwareImage`
(the ELF, its board, its sizes by part and its test set); each saves and loads itself (JSON + .npz)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolchain.boards import Board, get_board
from toolchain.compiler import cmsis_nn
from toolchain.compiler.exits import ExitThreshold
from toolchain.compiler.hostrun import pack_inputs
from toolchain.compiler.model_plan import ModelPlan
from toolchain.errors import ToolchainError
from toolchain.fsutil import sha256_file, write_atomic, write_json
from toolchain.paths import REPO
from toolchain.stackbound import BOUND_FILE, StackBound, image_bound, linker_map_sections
from toolchain.tools import ARM_GCC_HINT, require_tool

# The stack is sized from the image's static worst case (toolchain/stackbound.py), plus STACK_MARGIN: room for one
# more exception frame (108 B at most), so that even a fault taken inside the SysTick handler pushes its frame and
# TM FAULT reports its pc and lr; rounded up to 8 (the stack's alignment).
STACK_MARGIN = 128
# Before the build no bound exists: check_fits assumes this much, about twice the largest stack reserved for a zoo
# model (400-1,200 B over the boards and kernel paths; VWW on the M55 the most). The link then checks exactly.
STACK_ESTIMATE = 2048
# Before the build: the main RAM's bytes other than the arena, stack and RAM weights, i.e. the runtime's and the
# harness's .data/.bss (measured 716 B for KWS on the M4: runtime 516, harness 200 with its 8 B per layer), bounded
# with room for newlib's data (its reentrancy struct, ~1 KiB) and a few hundred layers.
RUNTIME_RAM = 4096
WEIGHTS_IN = ("flash", "ram")  # where the model's weights live (CMake TM_WEIGHTS_IN)
DEFAULT_STACK = 16 * 1024  # sections.ld's TM_STACK_SIZE default: the stack when the bound is unknown
PLAN_STAMP = "made for model_plan.json sha256"


def _c_bytes(data: bytes) -> str:
    rows = [", ".join(str(b) for b in data[i:i + 32]) for i in range(0, len(data), 32)]
    return ",\n    ".join(rows) if rows else "0"


TESTSET_INPUTS, TESTSET_FILE, IMAGE_FILE = "testset.npz", "testset.json", "firmware.json"
IMAGE_SUFFIXES = (".elf", ".bin", ".hex", ".map")


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ToolchainError(f"{path.parent} has no {path.name} ({what})") from None
    except ValueError as exc:
        raise ToolchainError(f"{path} is not valid JSON: {exc}") from exc


@dataclass(frozen=True)
class TestSet:
    """The samples embedded in the firmware: per model input an array [N, *shape], the labels (None: unlabelled)
    and the exit threshold the harness passes to tm_model_run."""
    inputs: tuple[np.ndarray, ...]
    labels: tuple[int, ...] | None
    exit_threshold: ExitThreshold

    __test__ = False  # not a pytest class

    @property
    def samples(self) -> int:
        return len(self.inputs[0]) if self.inputs else 0

    @property
    def batch(self) -> list[list[np.ndarray]]:
        """Sample by sample, each a list with one array per model input."""
        return [[x[k] for x in self.inputs] for k in range(self.samples)]

    def __eq__(self, other) -> bool:
        return (isinstance(other, TestSet) and self.labels == other.labels
                and self.exit_threshold == other.exit_threshold and len(self.inputs) == len(other.inputs)
                and all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(self.inputs, other.inputs)))

    __hash__ = None

    def save(self, directory: Path) -> None:
        np.savez(Path(directory) / TESTSET_INPUTS, **{f"input_{i}": x for i, x in enumerate(self.inputs)})
        write_json(Path(directory) / TESTSET_FILE, {"samples": self.samples, "inputs": len(self.inputs),
                                                    "labels": None if self.labels is None else list(self.labels),
                                                    "exit_threshold": self.exit_threshold.to_dict()})

    @classmethod
    def load(cls, directory: Path) -> TestSet:
        meta = _read_json(Path(directory) / TESTSET_FILE, "the embedded test set")
        with np.load(Path(directory) / TESTSET_INPUTS, allow_pickle=False) as data:
            inputs = tuple(data[f"input_{i}"] for i in range(int(meta["inputs"])))
        labels = None if meta.get("labels") is None else tuple(int(v) for v in meta["labels"])
        return cls(inputs, labels, ExitThreshold.from_dict(meta["exit_threshold"]))


def write_testset(model_dir: Path, samples: list[list[np.ndarray]], labels: list[int] | None = None,
                  exit_threshold: ExitThreshold = ExitThreshold(None, 0)) -> int:
    """Write MODEL_DIR/testset.c, stamped with the sha256 of the model_plan.json it was made for, and the typed
    `TestSet` beside it; returns its bytes of flash."""
    plan_path = Path(model_dir) / "model_plan.json"
    plan = ModelPlan.load(model_dir)
    data = b"".join(pack_inputs(plan, s) for s in samples)
    labels = list(labels) if labels is not None else [-1] * len(samples)
    if len(labels) != len(samples):
        raise ToolchainError(f"{len(samples)} samples but {len(labels)} labels")
    inputs = tuple(np.stack([np.asarray(s[i], dtype=spec.dtype).reshape(spec.shape) for s in samples])
                   if samples else np.zeros((0, *spec.shape), spec.dtype) for i, spec in enumerate(plan.inputs))
    testset = TestSet(inputs, None if all(v == -1 for v in labels) else tuple(int(v) for v in labels),
                      exit_threshold)
    source = (
        "/* Generated by tinyml-toolchain: the embedded test set. Do not edit. */\n"
        f"/* {PLAN_STAMP} {sha256_file(plan_path)} */\n"
        '#include "testset.h"\n\n'
        f"const uint32_t tm_testset_count = {len(samples)}u;\n"
        f"const int32_t tm_testset_exit_threshold = {int(exit_threshold.int8)};\n"
        f"const uint8_t tm_testset_inputs[{max(len(data), 1)}] __attribute__((aligned(4))) = {{\n"
        f"    {_c_bytes(data)}\n}};\n"
        f"const int16_t tm_testset_labels[{max(len(labels), 1)}] = {{ {', '.join(map(str, labels or [-1]))} }};\n"
    )
    testset.save(Path(model_dir))
    write_atomic(Path(model_dir) / "testset.c", source)  # last: its stamp says the test set is complete
    return len(data) + 2 * len(labels)


def check_testset(model_dir: Path) -> None:
    """testset.c was made for this model_plan.json: another model's samples would build and run, wrongly."""
    testset, plan = Path(model_dir) / "testset.c", Path(model_dir) / "model_plan.json"
    redo = "re-run `tinyml run` (or delete testset.c and run `tinyml build` to embed random inputs)"
    if not plan.is_file():
        raise ToolchainError(f"{model_dir} is not a compiled model (no model_plan.json)",
                             f"run `tinyml compile MODEL.tflite -o {model_dir}` first")
    if not testset.is_file():
        raise ToolchainError(f"{model_dir} has no testset.c", redo)
    stamp = re.search(re.escape(PLAN_STAMP) + r" ([0-9a-f]{64})", testset.read_text(errors="replace"))
    if stamp is None:
        raise ToolchainError(f"{testset} does not say which model_plan.json it was made for", redo)
    if stamp.group(1) != sha256_file(plan):
        raise ToolchainError(f"{testset} was made for another model (its model_plan.json sha256 differs)", redo)
    if not (Path(model_dir) / TESTSET_FILE).is_file() or not (Path(model_dir) / TESTSET_INPUTS).is_file():
        raise ToolchainError(f"{model_dir} has no {TESTSET_FILE} and {TESTSET_INPUTS} beside testset.c", redo)


def main_ram_for_arena(board: Board, weights_in_ram: int = 0) -> int:
    """The main RAM's bytes free for the arena before building: its size less the stack (STACK_ESTIMATE), the
    runtime and harness (RUNTIME_RAM) and the weights when they are in RAM (`weights_in_ram` bytes)."""
    return max(board.ram.size - STACK_ESTIMATE - RUNTIME_RAM - weights_in_ram, 0)


def arena_regions(board: Board, pin: str | None = None, weights_in_ram: int = 0) -> list[tuple[str, int]]:
    """The regions the compiler may split the arena over, fastest first, as (name, bytes free): the main RAM
    ("ram", `main_ram_for_arena`) then each extra region whole; `pin`: that one region only."""
    free = {"ram": main_ram_for_arena(board, weights_in_ram), **{r.name: r.size for r in board.extra_ram}}
    if pin is not None:
        return [(board.region(pin).name, free[pin])]
    return list(free.items())


def check_weights_in(weights_in: str) -> None:
    if weights_in not in WEIGHTS_IN:
        raise ToolchainError(f"weights in {weights_in!r}?", f"choose {' or '.join(WEIGHTS_IN)}")


def check_fits(plan: ModelPlan, board: Board, testset_bytes: int = 0, weights_in: str = "flash") -> None:
    """Refuse before building when the model alone cannot fit (with the stack estimated: STACK_ESTIMATE): the main
    RAM (its arena part, the stack, and the weights with `weights_in` "ram"), each extra region the arena uses, the
    flash. The linker checks the rest exactly, with the stack sized from the image's bound."""
    check_weights_in(weights_in)
    parts = dict(plan.arena_regions) if plan.arena_regions else {"ram": plan.arena_bytes}
    for name in parts:
        board.region(name)  # compiled for another board's regions: refused by name
    weights_ram = plan.weights_bytes if weights_in == "ram" else 0
    ram_need = parts.get("ram", 0) + STACK_ESTIMATE + weights_ram
    if ram_need > board.ram.size:
        weights = f" + weights {weights_ram:,}" if weights_ram else ""
        raise ToolchainError(
            f"the model needs {ram_need:,} bytes of RAM (arena {parts.get('ram', 0):,}{weights} + stack about "
            f"{STACK_ESTIMATE:,}) but {board.name} has {board.ram.size:,}: "
            f"{ram_need - board.ram.size:,} bytes too many",
            "choose a board with more RAM, or shrink the model (prune, smaller input, fewer channels)"
            + (", or keep the weights in flash" if weights_ram else ""))
    for region in board.extra_ram:
        if parts.get(region.name, 0) > region.size:
            raise ToolchainError(
                f"the model's arena part in {region.name} needs {parts[region.name]:,} bytes but {board.name}'s "
                f"{region.name} has {region.size:,}: {parts[region.name] - region.size:,} bytes too many",
                "recompile for this board (the arena is split over its regions), or shrink the model")
    flash_need = plan.weights_bytes + testset_bytes
    if flash_need > board.flash.size:
        raise ToolchainError(
            f"weights ({plan.weights_bytes:,} B) and test set ({testset_bytes:,} B) need {flash_need:,} bytes "
            f"of flash but {board.name} has {board.flash.size:,}: {flash_need - board.flash.size:,} bytes too many",
            "embed fewer samples (--samples), or prune/quantize the model further")


_OVERFLOW = re.compile(r"region [`'](\w+)' overflowed by (\d+) bytes")


@dataclass(frozen=True)
class FirmwareSizes:
    """Bytes by part (arena, model weights, kernels, test set, ...) in flash and in the main RAM (the stack reserved
    among them), in each extra RAM region the image uses, and the static stack bound the stack was sized from."""
    flash: dict[str, int]
    ram: dict[str, int]
    stack_bound: StackBound | None = None
    regions: dict[str, dict[str, int]] = field(default_factory=dict)  # per extra RAM region: bytes by part

    @property
    def stack_reserved(self) -> int | None:
        return self.ram.get("stack")

    @property
    def flash_total(self) -> int:
        return sum(self.flash.values())

    @property
    def ram_total(self) -> int:
        return sum(self.ram.values())

    def region_total(self, name: str) -> int:
        return sum(self.regions.get(name, {}).values())

    def to_dict(self) -> dict:
        return {"flash": dict(self.flash), "ram": dict(self.ram), "flash_total": self.flash_total,
                "ram_total": self.ram_total,
                "regions": {name: dict(parts) for name, parts in self.regions.items()},
                "stack_bound": None if self.stack_bound is None else self.stack_bound.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> FirmwareSizes:
        bound = d.get("stack_bound")  # None: an image built before the bound existed
        return cls({str(k): int(v) for k, v in d["flash"].items()}, {str(k): int(v) for k, v in d["ram"].items()},
                   None if bound is None else StackBound.from_dict(bound),
                   {str(r): {str(k): int(v) for k, v in parts.items()} for r, parts in d.get("regions", {}).items()})


@dataclass(frozen=True)
class FirmwareImage:
    """The build stage's artifact: the ELF (.bin/.hex/.map beside it), the board it is for, its sizes by part and
    the test set it embeds (with the one exit threshold the harness uses)."""
    elf: Path
    board: Board
    sizes: FirmwareSizes
    testset: TestSet

    @property
    def samples(self) -> int:
        return self.testset.samples

    @property
    def labels(self) -> tuple[int, ...] | None:
        return self.testset.labels

    @property
    def exit_threshold(self) -> ExitThreshold:
        return self.testset.exit_threshold

    def save(self, directory: Path) -> FirmwareImage:
        """Copy the image into `directory` as firmware.elf/.bin/.hex/.map with firmware.json and the test set;
        returns the image there."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for suffix in IMAGE_SUFFIXES:
            src = self.elf.with_suffix(suffix)
            if src.is_file() and src.resolve() != (directory / f"firmware{suffix}").resolve():
                shutil.copy2(src, directory / f"firmware{suffix}")
        self.testset.save(directory)
        if self.sizes.stack_bound is not None:
            self.sizes.stack_bound.save(directory)
        write_json(directory / IMAGE_FILE, {"elf": "firmware.elf", "board": self.board.name,
                                            "sizes": self.sizes.to_dict()})
        return FirmwareImage(directory / "firmware.elf", self.board, self.sizes, self.testset)

    @classmethod
    def load(cls, directory: Path) -> FirmwareImage:
        directory = Path(directory)
        meta = _read_json(directory / IMAGE_FILE, "a firmware image")
        return cls(directory / meta["elf"], get_board(meta["board"]), FirmwareSizes.from_dict(meta["sizes"]),
                   TestSet.load(directory))



HARNESSES = ("harness", "eembc")  # the application: our benchmark harness, or the EEMBC runner mode (CMake APP)
EEMBC_PROFILES = ("kws01", "vww01", "ic01", "ad01")


def eembc_profile(plan: ModelPlan, requested: str | None = None) -> str:
    """The MLPerf Tiny benchmark an EEMBC-mode image answers for (`profile%`: m-model-[...]), which fixes the input
    format the host sends: `requested`, else deduced from the model's single input (KWS 49x10x1 int8, VWW 96x96x3,
    IC 32x32x3, AD 640 values)."""
    if len(plan.inputs) != 1:
        raise ToolchainError(f"the EEMBC runner mode drives single-input models; this one has {len(plan.inputs)}")
    spec = plan.inputs[0]
    if spec.dtype != "int8":
        raise ToolchainError(f"the EEMBC runner mode needs an int8 model input, not {spec.dtype}")
    if requested is not None:
        if requested not in EEMBC_PROFILES:
            raise ToolchainError(f"unknown EEMBC profile {requested!r}", f"choose one of {', '.join(EEMBC_PROFILES)}")
        if requested == "ad01" and spec.scale is None:
            raise ToolchainError("ad01 quantizes float32 input on the device, but the model input has no scale")
        return requested
    dims = tuple(int(d) for d in spec.shape if int(d) != 1)
    by_shape = {(49, 10): "kws01", (96, 96, 3): "vww01", (32, 32, 3): "ic01", (640,): "ad01"}
    if dims in by_shape and not (by_shape[dims] == "ad01" and spec.scale is None):
        return by_shape[dims]
    raise ToolchainError(f"cannot tell which EEMBC benchmark a {spec.dtype} {list(spec.shape)} input is: "
                         f"pass --eembc-profile ({', '.join(EEMBC_PROFILES)})")


def eembc_output(plan: ModelPlan) -> int:
    """The output the EEMBC results are read from: the final one (not an early exit's)."""
    exits = {e.output for e in plan.exits}
    return next((i for i, o in enumerate(plan.outputs) if o.name not in exits and o.tensor not in exits), 0)


def build_firmware(model_dir: Path, board: Board, build_dir: Path, *, profile: bool = True,
                   dump_tensors: bool = False, weights_in: str = "flash", harness: str = "harness",
                   eembc: str | None = None) -> FirmwareImage:
    """Build, bound the image's stack, and link again with the stack sized from the bound (only the link reruns: the
    code, hence the bound, stays the same; checked). The bound is saved in the build directory (stack_bound.json).
    `dump_tensors`: the harness prints every layer's output (TM TENSOR lines) for `tinyml run --dump-tensors`.
    `weights_in`: flash (read in place) or ram (in .data, copied at start-up).
    `harness`: "harness" (our benchmark harness and its embedded test set) or "eembc" (the EEMBC runner mode of
    docs/PROTOCOL.md: no test set, runs until power-off; `eembc` the profile, None: deduced by `eembc_profile`)."""
    require_tool("cmake", ARM_GCC_HINT)
    require_tool("arm-none-eabi-gcc", ARM_GCC_HINT)
    if harness not in HARNESSES:
        raise ToolchainError(f"unknown harness {harness!r}", f"choose {' or '.join(HARNESSES)}")
    model_dir, build_dir = Path(model_dir).resolve(), Path(build_dir).resolve()
    if harness == "harness":
        check_testset(model_dir)  # first: it names a directory that is not a compiled model
    plan = ModelPlan.load(model_dir)
    if harness == "harness":
        app = ["-DAPP=harness"]
    else:
        app = ["-DAPP=eembc", f"-DTM_EEMBC_PROFILE={eembc_profile(plan, eembc)}",
               f"-DTM_EEMBC_OUTPUT={eembc_output(plan)}"]
    check_weights_in(weights_in)
    for name in plan.arena_regions or {}:
        board.region(name)  # an arena part in a region this board lacks would land wherever the linker puts orphans
    (build_dir / BOUND_FILE).unlink(missing_ok=True)  # an earlier build's: this one writes its own when done
    configure = ["cmake", "-S", str(REPO), "-B", str(build_dir), f"-DBOARD={board.name}", *app,
                 f"-DMODEL_DIR={model_dir}", f"-DTM_PROFILE={'ON' if profile else 'OFF'}",
                 f"-DTM_DUMP_TENSORS={'ON' if dump_tensors else 'OFF'}", f"-DCMSIS_NN_ROOT={cmsis_nn_root(model_dir)}",
                 f"-DTM_WEIGHTS_IN={weights_in}"]
    _cmake(configure + ["-DTM_STACK_SIZE=0"], build_dir, board)  # the code does not depend on the stack size
    bound = image_bound(build_dir, fp_context=has_fp_context(board))
    stack = reserved_stack(bound)
    _cmake(configure + [f"-DTM_STACK_SIZE={stack}"], build_dir, board)
    if image_bound(build_dir, fp_context=has_fp_context(board)) != bound:
        raise RuntimeError(f"relinking {build_dir / 'firmware.elf'} with another stack size changed its code")
    bound.save(build_dir)
    testset = TestSet.load(model_dir) if harness == "harness" else empty_testset(plan)
    return FirmwareImage(build_dir / "firmware.elf", board, size_by_part(build_dir / "firmware.map", board, stack,
                                                                         bound), testset)


def empty_testset(plan: ModelPlan) -> TestSet:
    """No embedded samples (the EEMBC runner mode: the host sends each input)."""
    return TestSet(tuple(np.zeros((0, *spec.shape), spec.dtype) for spec in plan.inputs), None, ExitThreshold(None, 0))


def has_fp_context(board: Board) -> bool:
    """The core has FP (or MVE) registers, whose state an exception frame may hold."""
    return board.fpu != "none" or "mve" in board.features


def reserved_stack(bound: StackBound) -> int:
    """The stack to link: the bound plus STACK_MARGIN, rounded up to 8; DEFAULT_STACK when the bound is unknown."""
    if bound.bytes is None:
        return DEFAULT_STACK
    return -(-(bound.bytes + STACK_MARGIN) // 8) * 8


def _cmake(configure: list[str], build_dir: Path, board: Board) -> None:
    """Configure and build; a failure raises, an overflowing memory region by how many bytes."""
    for cmd in (configure, ["cmake", "--build", str(build_dir), "-j", "2"]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            log = proc.stdout + proc.stderr
            over = _OVERFLOW.findall(log)
            if over:
                detail = ", ".join(f"{region} by {int(n):,} bytes" for region, n in over)
                raise ToolchainError(f"the firmware does not fit {board.name}: overflows {detail}",
                                     "embed fewer samples (--samples), or shrink the model")
            raise ToolchainError(f"firmware build failed ({' '.join(cmd[:2])}):\n{log[-3000:]}")


def cmsis_nn_root(model_dir: Path) -> str:
    """The CMSIS-NN checkout a cmsis-nn compile recorded (checked again: it is the user's and may have moved);
    "" for every other kernel path."""
    if ModelPlan.load(model_dir).target != cmsis_nn.TARGET:
        return ""
    root = cmsis_nn.CmsisCheckout.load(model_dir).root
    cmsis_nn.check_layout(root)
    return str(root)


# (part, object file path contains, input section prefixes or None for any)
# CMSIS-NN (--kernels cmsis-nn) first: its library lies in the build directory, whatever that path contains.
PARTS = (("CMSIS-NN kernels", "libtm_cmsis_nn.a(", None),
         ("arena", "model.c", (".bss", ".tm_arena")),
         ("model weights", "model.c", (".rodata", ".data", ".tm_ram_weights")),
         ("model code", "model.c", None), ("kernels", "/kernels/", None), ("test set", "testset.c", None),
         ("harness", "/app/", None), ("harness", "/app_eembc/", None), ("C library", "/lib", None))


def _part(obj: str, section: str) -> str:
    for name, needle, prefixes in PARTS:
        if needle in obj and (prefixes is None or section.startswith(prefixes)):
            return name
    return "runtime (startup, drivers)"


# Input sections whose initial values the start-up code copies from flash into RAM.
_LOADED_INTO_RAM = (".data", ".tm_ram_weights")


def size_by_part(map_file: Path, board: Board, stack: int, stack_bound: StackBound | None = None) -> FirmwareSizes:
    """Attribute every input section of the linker map to a part, in flash, the main RAM and each extra RAM region;
    `stack`: the bytes reserved."""
    flash: dict[str, int] = {}
    ram: dict[str, int] = {}
    regions: dict[str, dict[str, int]] = {}
    for section, addr, size, obj in linker_map_sections(map_file):
        if size == 0 or not section.startswith(".") or section.startswith((".debug", ".comment", ".ARM.attr")):
            continue
        part = _part(obj, section)
        if board.flash.origin <= addr < board.flash.origin + board.flash.size:
            flash[part] = flash.get(part, 0) + size
        elif board.ram.origin <= addr < board.ram.origin + board.ram.size:
            ram[part] = ram.get(part, 0) + size
            if section.startswith(_LOADED_INTO_RAM):  # initial values live in flash too
                flash[part] = flash.get(part, 0) + size
        else:
            region = next((r for r in board.extra_ram if r.origin <= addr < r.end), None)
            if region is not None:
                parts = regions.setdefault(region.name, {})
                parts[part] = parts.get(part, 0) + size
    ram["stack"] = stack
    return FirmwareSizes(flash, ram, stack_bound, regions)
