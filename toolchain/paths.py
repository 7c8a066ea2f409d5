"""Where the repository's own files live, computed once from this package's location."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIRMWARE_DIR = REPO / "firmware"
BOARDS_DIR = REPO / "boards"
MODELS_DIR = REPO / "models"
