"""The `tinyml` command. Each subcommand is a module registering a Command."""
from __future__ import annotations

import argparse
import errno
import os
import sys

from toolchain import __version__
from toolchain.cli.base import COMMANDS
from toolchain.errors import ToolchainError

# Importing the modules registers the subcommands.
from toolchain.cli import (  # noqa: E402,F401
    bench, boards, build, compile, compress, demo, evaluate, export, export_platformio, flash, import_onnx, ops,
    pipeline, run, train, tune, zoo,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tinyml", description="tinyML models to measured Cortex-M firmware")
    parser.add_argument("--version", action="version", version=f"tinyml-toolchain {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        cmd.add_arguments(sub.add_parser(name, help=cmd.help, description=cmd.help))
    args = parser.parse_args(argv)
    try:
        return COMMANDS.get(args.command).run(args) or 0
    except ToolchainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file system problem the user can fix (not a bug): one line, no traceback
        print(f"error: {describe_os_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


# errno values that only a write can raise: their message says "cannot write".
WRITE_ERRORS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG, errno.EEXIST, errno.ENOTDIR, errno.EISDIR}


def describe_os_error(exc: OSError) -> str:
    """'cannot write /x/y: No space left on device': the path and the errno text of an OSError."""
    reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc))
    if exc.filename is None:
        return reason
    path = os.fsdecode(exc.filename) if isinstance(exc.filename, (bytes, str)) else str(exc.filename)
    if exc.filename2 is not None:
        path = f"{path} -> {os.fsdecode(exc.filename2)}"
    verb = "write" if exc.errno in WRITE_ERRORS else "access"
    return f"cannot {verb} {path}: {reason}"


if __name__ == "__main__":
    sys.exit(main())
