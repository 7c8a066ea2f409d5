"""Verification: our outputs against a named reference (LiteRT BUILTIN_REF), and where they differ.

- `reference`: LiteRT BUILTIN_REF runners (outputs; every intermediate tensor).
- `check`: the host check of the generated C (`check_against_reference`) and the per-sample comparison.
- `device`: a firmware run's outputs and exits against the reference (`compare_run`).
- `tensors`: the per-layer device-vs-LiteRT tensor diff.
- `int8`: the int8 evaluation (an int8 .tflite over a dataset, the threshold sweep on its outputs).
"""
