"""User-facing errors: the CLI prints them without a traceback."""


class ToolchainError(Exception):
    """A problem the user can fix. `hint` says how."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ModelError(ToolchainError):
    """The model file is unreadable, corrupt, or not fully int8."""


class UnsupportedOpsError(ToolchainError):
    """One or more operators cannot be compiled; `problems` lists every one of them."""

    def __init__(self, problems: list[str], hint: str | None = None):
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} operator(s) cannot be compiled:\n{lines}", hint)
        self.problems = problems


class MissingToolError(ToolchainError):
    """An external program (compiler, emulator) is not installed."""
