"""QEMU TCG plugins used by the runners (instruction counting)."""
