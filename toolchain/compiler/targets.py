"""Kernel paths and references: which kernel folders a compile uses and whose rounding it reproduces."""
from __future__ import annotations

from toolchain.errors import ToolchainError

# Each kernel path lists the kernel source folders (firmware/kernels/<folder>, and the variant modules in
# toolchain/compiler/ops/<folder>/) it uses, most specific first. Every path keeps the portable kernels: an op
# whose shape no variant of the path covers calls its `ref` kernel. A folder's files are named
# tm_<op>_s8.c / .h as in ref (compiled into kernels/<folder>/), their functions tm_<op>_s8_<folder>[_<variant>];
# model.c includes its path's headers.
TARGETS = {"ref": ("ref",), "dsp": ("dsp", "ref"), "mve": ("mve", "dsp", "ref")}
# Kernel paths whose fast kernels are not ours but a library the user points us at (never vendored): the ops the
# library covers call it (toolchain/compiler/cmsis_nn.py), the others keep our kernels of these folders.
EXTERNAL_TARGETS = {"cmsis-nn": ("ref",)}
KERNEL_PATHS = (*TARGETS, *EXTERNAL_TARGETS)  # every `--kernels` choice
# Which reference interpreter's rounding the generated code reproduces (they differ only in FULLY_CONNECTED):
# LiteRT's BUILTIN_REF kernels (single rounding) or tflite-micro's (TFLite's classic double rounding, as CMSIS-NN).
REFERENCES = ("litert", "tflm")


def check_target(target: str) -> None:
    if target not in KERNEL_PATHS:
        raise ToolchainError(f"unknown kernel path {target!r}", f"choose one of: {', '.join(KERNEL_PATHS)}")


def kernel_folders(target: str) -> tuple[str, ...]:
    """Our kernel folders a kernel path compiles, most specific first."""
    check_target(target)
    return TARGETS.get(target) or EXTERNAL_TARGETS[target]


def check_reference(reference: str) -> None:
    if reference not in REFERENCES:
        raise ToolchainError(f"unknown reference {reference!r}", f"choose one of: {', '.join(REFERENCES)}")
