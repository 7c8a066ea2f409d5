"""tinyml-toolchain: train, compress and compile tinyML models to measured Cortex-M firmware."""

__version__ = "0.1.0"
