"""The recipe's [target] section: where and how the pipeline deploys and measures."""
from __future__ import annotations

from dataclasses import dataclass

from toolchain.errors import ToolchainError
from toolchain.recipe import recipe_section


@recipe_section("target")
@dataclass(frozen=True)
class TargetSection:
    board: str = "mps2-an386"  # see `tinyml boards`
    samples: int = 64  # test samples embedded in the firmware and run on the device
    timeout: float = 600.0  # emulator timeout, seconds
    calibration_samples: int = 100  # training samples for int8 post-training calibration

    def validate(self, where: str) -> None:
        from toolchain.boards import get_board

        try:
            get_board(self.board)
        except ToolchainError as exc:
            raise ToolchainError(f"{where}: {exc.message}", exc.hint) from exc
        if self.samples < 1 or self.calibration_samples < 1:
            raise ToolchainError(f"{where}: samples and calibration_samples must be >= 1")
        if self.timeout <= 0:
            raise ToolchainError(f"{where}: timeout must be > 0")
