"""The mve kernel path's op variants (one module per op, each registering a Variant)."""
