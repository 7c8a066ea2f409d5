"""compile_model: .tflite -> model.c, model.h, model_plan.json and the kernels they need, in one directory."""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from toolchain import __version__
from toolchain.compiler import cmsis_nn, inplace
from toolchain.compiler.codegen import describe_io, generate
from toolchain.compiler.exits import schedule_exits
from toolchain.compiler.frontend import load_tflite
from toolchain.compiler.ir import Graph
from toolchain.compiler.model_plan import (
    PLAN_FILE, ArenaTensor, ExitInfo, LayerInfo, ModelPlan, OverlapInfo, TensorIO,
)
from toolchain.compiler.ops import OPS
from toolchain.compiler.passes import make_static, optimize
from toolchain.compiler.planner import Plan, plan_memory, split_regions, with_scratch_budgets
from toolchain.compiler.schedule import candidate_orders
from toolchain.compiler.targets import EXTERNAL_TARGETS, check_reference, kernel_folders
from toolchain.errors import ToolchainError, UnsupportedOpsError
from toolchain.fsutil import atomic_dir, sha256_file, write_atomic
from toolchain.paths import FIRMWARE_DIR

KERNEL_INCLUDE = FIRMWARE_DIR / "kernels" / "include"


@dataclass(frozen=True)
class CompiledModel:
    """The compile stage's artifact: a directory of generated C (model.c, model.h, kernels/) and its typed plan."""
    out_dir: Path
    plan: ModelPlan

    @property
    def arena_bytes(self) -> int:
        return self.plan.arena_bytes

    def save(self, directory: Path | str) -> CompiledModel:
        """A copy of the whole compiled model in `directory` (which must not exist yet)."""
        directory = Path(directory)
        if directory.resolve() != self.out_dir.resolve():
            shutil.copytree(self.out_dir, directory)
        return CompiledModel.load(directory)

    @classmethod
    def load(cls, directory: Path | str) -> CompiledModel:
        return cls(Path(directory), ModelPlan.load(directory))


CompileResult = CompiledModel  # the name callers used before the artifact was typed


def model_inputs(model_path: Path | str) -> tuple[TensorIO, ...]:
    """The inputs of a .tflite as the compiled model will take them (not placed: offset None), without compiling."""
    from toolchain.compiler import codegen, frontend  # looked up at call time (tests stand in for the frontend)

    g = frontend.load_tflite(Path(model_path))
    return tuple(TensorIO.from_dict(codegen.describe_io(g, t, n)) for t, n in zip(g.inputs, g.input_names))


def kernel_sources(target: str) -> list[Path]:
    """The kernel files copied next to model.c: the path's C sources and headers, then the kernels' private
    headers (tm_nn.h, the public API, is copied on its own)."""
    folders = [FIRMWARE_DIR / "kernels" / folder for folder in kernel_folders(target)]
    sources = sorted(p for folder in folders for p in folder.glob("*.c"))
    headers = sorted(p for folder in folders for p in folder.glob("*.h"))
    return sources + headers + sorted(p for p in KERNEL_INCLUDE.glob("*.h") if p.name != "tm_nn.h")


def kernel_output_path(src: Path) -> str:
    """Where a kernel file goes in the compile output: kernels/<name> for the portable kernels and the shared
    headers, kernels/<path>/<name> for a path's (dsp/tm_conv2d_s8.c beside ref's tm_conv2d_s8.c)."""
    folder = src.parent.name
    return f"kernels/{src.name}" if folder in ("ref", "include") else f"kernels/{folder}/{src.name}"


def path_headers(target: str) -> list[str]:
    """The headers declaring a kernel path's variants (kernels/<path>/tm_<op>_s8.h), included by model.c after
    tm_nn.h, as "<path>/tm_<op>_s8.h"; with cmsis-nn, CMSIS-NN's API header (from the user's checkout)."""
    if target == cmsis_nn.TARGET:
        return list(cmsis_nn.HEADERS)
    return [f"{folder}/{p.name}" for folder in kernel_folders(target) if folder != "ref"
            for p in sorted((FIRMWARE_DIR / "kernels" / folder).glob("tm_*.h"))]


def check_supported(g: Graph) -> None:
    """Every problem with every op, in one error, before anything is written."""
    problems = []
    for op in g.ops:
        opdef = OPS.get(op.kind)
        if opdef is None:
            problems.append(f"{op.location}: operator {op.kind} has no kernel")
            continue
        problems += [f"{op.location}: {p}" for p in opdef.check(op, g)]
    if not problems:
        return
    if any(op.kind not in OPS for op in g.ops):
        raise UnsupportedOpsError(problems, f"supported operators: {', '.join(OPS)}")
    raise UnsupportedOpsError(problems, "change these layers, or re-export the model with TFLiteConverter "
                              "if the file may have been edited")


def plan_report(source: Path, g_in: Graph, g: Graph, plan: Plan, layers, weight_bytes: int,
                target: str, reference: str = "litert") -> ModelPlan:
    tensors = []
    for buf in sorted(plan.buffers.values(), key=lambda b: (b.first, b.offset)):
        t = g.tensors[buf.tensor]
        tensors.append(ArenaTensor(t.id, t.name, t.dtype, tuple(t.shape), buf.size, buf.offset, buf.first, buf.last,
                                   buf.region))
    for op_index, buf in sorted(plan.scratch.items()):
        tensors.append(ArenaTensor(None, buf.name, "int8", (buf.size,), buf.size, buf.offset, op_index, op_index,
                                   buf.region))
    return ModelPlan(
        source=str(source),
        source_sha256=sha256_file(source),
        toolchain_version=__version__,
        target=target,
        reference=reference,
        arena_bytes=plan.arena_size,
        live_peak_bytes=plan.live_peak,
        weights_bytes=weight_bytes,
        macs=sum(layer.macs for layer in layers),
        ops_in_model=len(g_in.ops),
        layers_generated=len(layers),
        inputs=tuple(TensorIO.from_dict({**describe_io(g, t, n), "offset": plan.input_offsets[t],
                                         "arena_offset": plan.buffers[g.root(t)].offset})
                     for t, n in zip(g.inputs, g.input_names)),
        outputs=tuple(TensorIO.from_dict({**describe_io(g, t, n), "offset": plan.output_offsets[t],
                                          "arena_offset": plan.buffers[g.root(t)].offset})
                      for t, n in zip(g.outputs, g.output_names)),
        layers=tuple(layer_info(g, layer) for layer in layers),
        overlaps=tuple(OverlapInfo(o.op, o.reader, o.writer,
                                   plan.buffers[o.writer].offset - plan.buffers[o.reader].offset)
                       for o in plan.overlaps),
        plan_strategy=plan.strategy,
        arena_regions=dict(plan.regions),
        tensors=tuple(tensors),
        exits=tuple(ExitInfo(k, g.output_names[g.outputs.index(p.output)], p.after,
                             sum(layer.macs for layer in layers[:p.after])) for k, p in enumerate(g.exits)),
    )


BAND_CHOICES = ("auto", "all", "none")


def layer_info(g: Graph, layer) -> LayerInfo:
    op = g.ops[layer.index]
    stage_end = op.options.get(inplace.STAGE_END)
    return LayerInfo(layer.index, layer.kind, layer.location, layer.macs,
                     tuple(tuple(g.tensors[t].shape) for t in op.inputs if t >= 0),
                     tuple(tuple(g.tensors[t].shape) for t in op.outputs),
                     int(op.options.get(inplace.BANDS, 0)), stage_end, op.options.get(inplace.IN_STAGE),
                     inplace.stage_macs(g, layer.index) if stage_end is not None else None)


def compile_model(model_path: Path | str, out_dir: Path | str, target: str = "ref",
                  early_exit: bool = False, reference: str | None = None, bands: str = "auto",
                  regions: list[tuple[str, int]] | None = None) -> CompiledModel:
    """`target`: the kernel path (TARGETS). `early_exit`: the outputs other than the final one are exits the
    generated code may return at. `reference`: whose rounding to reproduce (REFERENCES; default litert).
    `target` cmsis-nn: CMSIS_NN_ROOT must name a CMSIS-NN checkout (checked first, nothing written otherwise); the
    code reproduces tflite-micro (`tflm`, the default there): CMSIS-NN's FULLY_CONNECTED rounds as it does.
    `bands`: run windowed layers in row bands where that lowers the arena (auto), wherever possible (all: tests
    every kernel that way), or never (none). `regions`: the RAM regions the arena may use, fastest first, as
    (name, bytes free): the arena is split over them where the first cannot hold it ("ram": the main RAM's
    `tm_arena`; another name: section .tm_arena.<name>, placed by the board's linker script); a model too big for
    every split is refused with the numbers."""
    model_path, out_dir = Path(model_path), Path(out_dir)
    check_regions(regions)
    checkout = cmsis_nn.find_checkout() if target == cmsis_nn.TARGET else None
    sources = kernel_sources(target)
    reference = reference or ("tflm" if checkout is not None else "litert")
    check_reference(reference)
    if checkout is not None and reference != "tflm":
        raise ToolchainError("CMSIS-NN rounds FULLY_CONNECTED like tflite-micro, not like LiteRT BUILTIN_REF",
                             "use --reference tflm with --kernels cmsis-nn (or leave --reference out)")
    g_model = load_tflite(model_path)
    check_int16_reference(g_model, reference)
    g_in = make_static(g_model)
    check_supported(g_in)
    g = optimize(g_in)
    if early_exit:
        g = schedule_exits(g)
    if not g.ops:
        raise ToolchainError(f"{model_path} computes nothing (no operators left after removing reshapes)")
    if target in EXTERNAL_TARGETS:  # the library's buffer sizes and no overlap (its in-place rules are not ours)
        plan = plan_memory(g, cmsis_nn.scratch_requirements(g), overlaps=False)
    else:
        g, plan = min((plan_with_variants(band_layers(order, target, bands), target) for order in candidate_orders(g)),
                      key=lambda gp: gp[1].arena_size)  # the first (the model's order) on a tie
    if regions:
        plan = split_regions(plan, regions)
    model_c, model_h, layers, weight_bytes = generate(g, plan, model_path.name, target=target, reference=reference,
                                                      headers=path_headers(target))
    report = plan_report(model_path, g_model, g, plan, layers, weight_bytes, target, reference)
    # Everything is generated in memory first: a failure above leaves out_dir untouched.
    files = {"model.c": model_c, "model.h": model_h, PLAN_FILE: report.to_json(),
             **{kernel_output_path(src): src.read_bytes() for src in [KERNEL_INCLUDE / "tm_nn.h", *sources]}}
    if checkout is not None:  # CMSIS-NN itself is not copied: the firmware build compiles it from the checkout
        files[cmsis_nn.CHECKOUT_FILE] = checkout.to_json()
    write_output_dir(out_dir, files)
    return CompiledModel(out_dir, report)


def check_int16_reference(g: Graph, reference: str) -> None:
    """The int16 kernels reproduce LiteRT's reference (tflite-micro and CMSIS-NN round int16 layers otherwise)."""
    if reference != "litert" and any(t.dtype == "int16" and not t.is_const for t in g.tensors.values()):
        raise ToolchainError(f"int16 activations compile only against LiteRT BUILTIN_REF, not {reference}",
                             "compile an int16 model with the portable kernels and --reference litert")


_REGION_NAME = re.compile(r"[a-z][a-z0-9_]{0,15}")


def check_regions(regions) -> None:
    """Region names become C identifiers and section names: lower-case identifiers only, each once."""
    for name, size in regions or ():
        if not _REGION_NAME.fullmatch(str(name)) or not isinstance(size, int) or size < 0:
            raise ToolchainError(f"memory region {name!r} ({size!r} bytes) is not a lower-case identifier with a "
                                 "byte count", "name regions like ram, dtcm, isram")
    names = [name for name, _ in regions or ()]
    if len(set(names)) != len(names):
        raise ToolchainError(f"memory regions {names} name one region twice", "list each region once")


def band_layers(g: Graph, target: str, bands: str) -> Graph:
    if bands not in BAND_CHOICES:
        raise ToolchainError(f"unknown row-band choice {bands!r}", f"use one of {', '.join(BAND_CHOICES)}")
    if bands == "all":
        return inplace.with_bands(g, {i: 1 for i, op in enumerate(g.ops) if inplace.can_band(op, g)})
    if bands == "auto":
        with inplace.memoized():
            return inplace.choose_bands(g, lambda trial: plan_memory(trial, target=target).arena_size)
    return g


def plan_with_variants(g: Graph, target: str) -> tuple[Graph, Plan]:
    """The memory plan in two passes: each layer's kernel variant first in its leanest form, then in a faster one
    whose bigger scratch fits the arena bytes free at that layer (`with_scratch_budgets`), kept only if the arena
    did not grow. Returns the graph the code generator must see (its ops carry the budgets) and its plan."""
    plan = plan_memory(g, target=target)
    g_fast = with_scratch_budgets(g, plan)
    plan_fast = plan_memory(g_fast, target=target)
    return (g_fast, plan_fast) if plan_fast.arena_size <= plan.arena_size else (g, plan)


def check_out_dir(out_dir: Path) -> None:
    """Only an empty directory or an earlier compile output may be replaced: never a directory of the user's."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ToolchainError(f"output {out_dir} is a file, not a directory", "choose a new or empty directory (-o)")
    if out_dir.is_dir() and not (out_dir / PLAN_FILE).is_file() and any(out_dir.iterdir()):
        raise ToolchainError(f"output directory {out_dir} is not empty and is not a compile output (no {PLAN_FILE}); "
                             "it would be replaced whole", "choose an empty or new directory (-o)")


def write_output_dir(out_dir: Path, files: dict[str, str | bytes]) -> None:
    """Replace out_dir whole: with the disk full half-way, the previous output stays as it was."""
    check_out_dir(out_dir)
    target = out_dir.resolve()  # through a symlink; "." has no name to rename
    if Path.cwd().resolve().is_relative_to(target):
        raise ToolchainError(f"output directory {out_dir} is (or holds) the current directory: it would be replaced "
                             "whole", "choose a new directory (-o)")
    try:
        with atomic_dir(target) as staging:
            for rel, data in files.items():
                write_atomic(staging / rel, data)
    except OSError as exc:
        raise ToolchainError(f"cannot write {out_dir}: {exc.strerror or exc}",
                             "the previous output, if any, is unchanged; free space or choose another -o") from exc
