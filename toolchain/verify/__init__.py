"""Verification: our outputs against a named reference (LiteRT BUILTIN_REF), and where they differ."""
