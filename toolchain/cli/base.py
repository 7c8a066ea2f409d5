from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from toolchain.errors import ToolchainError
from toolchain.registry import Registry


class Command:
    help = ""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        pass

    def run(self, args: argparse.Namespace) -> int | None:
        raise NotImplementedError


COMMANDS: Registry[Command] = Registry("command")


def command(name: str):
    def decorator(cls: type[Command]) -> type[Command]:
        COMMANDS.register(name)(cls())
        return cls

    return decorator


# argparse `type=` functions: a bad value is a one-line usage error (exit 2) before any work starts.

def _number(text: str, kind: type):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}")
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def probability(text: str) -> float:
    value = _number(text, float)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {text!r}")
    return value


# Destinations are checked before long work, so a bad one fails in a second, not after the run.

def check_output_file(path: Path | None, option: str) -> None:
    """`path` can be written as a file: not a directory, below a directory (existing or creatable) we may write."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise ToolchainError(f"{option} {path} is a directory", f"give a file name, e.g. {path / 'out.json'}")
    _check_writable_parent(path.parent, f"{option} {path}")


def check_output_dir(path: Path | None, option: str) -> None:
    """`path` is, or can be created as, a directory we may write into."""
    if path is None:
        return
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ToolchainError(f"{option} {path} exists and is not a directory", "give a directory path")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise ToolchainError(f"{option} {path}: directory is not writable")
        return
    _check_writable_parent(path.parent, f"{option} {path}")


def _check_writable_parent(parent: Path, what: str) -> None:
    existing = parent.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ToolchainError(f"{what}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ToolchainError(f"{what}: {existing} is not writable")


def add_bands_argument(p) -> None:
    """`--bands` of compile and run: row bands and patch stages, the memory/speed trade-off."""
    p.add_argument("--bands", choices=("auto", "all", "none"), default="auto",
                   help="row bands and patch stages: auto (where they lower the arena, default), all (every "
                        "windowed layer in one-row bands), none (every layer one call: a few %% faster, more RAM)")
