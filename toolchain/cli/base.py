from __future__ import annotations

import argparse

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
