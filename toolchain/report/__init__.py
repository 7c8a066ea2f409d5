"""Presentation: terminal tables (plots and report files come with the pipeline)."""
