"""Runners execute a firmware image (emulator or board) and return the same parsed RunResult."""
