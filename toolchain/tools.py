"""Finding the external programs the toolchain runs, with the install hint shown when one is missing."""
from __future__ import annotations

import shutil

from toolchain.errors import MissingToolError

ARM_GCC_HINT = "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi cmake (or run `make setup`)"
QEMU_HINT = "apt-get install qemu-system-arm (or run `make setup`)"


def require_tool(name: str, hint: str) -> str:
    """The path of program `name`, or a MissingToolError carrying `hint`."""
    path = shutil.which(name)
    if path is None:
        raise MissingToolError(f"'{name}' is not installed", hint)
    return path
