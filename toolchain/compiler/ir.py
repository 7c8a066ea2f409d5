"""The compiler's typed IR: tensors, ops and the graph that holds them.

Passes never mutate a Graph: they return a new one (`Graph.replace`), sharing unchanged parts.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DTYPE_BYTES = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "int64": 8, "float32": 4, "float16": 2, "bool": 1}


@dataclass(frozen=True)
class Quant:
    """Affine quantization: real = scale * (q - zero_point); per channel along `axis` when len(scale) > 1."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1


@dataclass(frozen=True)
class Tensor:
    id: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: Quant | None = None
    data: np.ndarray | None = field(default=None, compare=False, repr=False)
    alias_of: int | None = None  # shares storage with this tensor (RESHAPE and friends)
    # Axes the model left unknown (shape_signature -1, e.g. Keras's batch): their size in `shape` is a
    # placeholder until `folding.fold_shapes` resolves it.
    unknown: tuple[int, ...] = ()

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * DTYPE_BYTES[self.dtype]

    @property
    def scale(self) -> float:
        assert self.quant is not None, f"tensor {self.name} is not quantized"
        return self.quant.scale[0]

    @property
    def zero_point(self) -> int:
        return self.quant.zero_point[0] if self.quant else 0

    def nhwc(self) -> tuple[int, int, int, int]:
        """The shape as 4-D NHWC, leading dims filled with 1."""
        if len(self.shape) > 4:
            raise ValueError(f"tensor {self.name} has rank {len(self.shape)} > 4")
        return tuple([1] * (4 - len(self.shape)) + list(self.shape))  # type: ignore[return-value]


@dataclass(frozen=True)
class Op:
    kind: str  # TFLite builtin name, e.g. "CONV_2D"
    inputs: tuple[int, ...]  # tensor ids; -1 for an omitted optional input
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict, compare=False)
    location: str = ""  # where it came from, for messages: "op #3 (CONV_2D) -> 'conv1/Relu'"

    def replace(self, **changes) -> "Op":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class ExitPoint:
    """After the first `after` ops, the model may return with output tensor `output` (an int8 softmax)."""

    output: int
    after: int


@dataclass(frozen=True)
class Graph:
    tensors: dict[int, Tensor]
    ops: tuple[Op, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    exits: tuple[ExitPoint, ...] = ()  # early exits in execution order; empty: compute every output

    def replace(self, **changes) -> "Graph":
        return dataclasses.replace(self, **changes)

    def tensor(self, tid: int) -> Tensor:
        return self.tensors[tid]

    def root(self, tid: int) -> int:
        """The tensor whose storage `tid` shares (itself when not an alias)."""
        while self.tensors[tid].alias_of is not None:
            tid = self.tensors[tid].alias_of  # type: ignore[assignment]
        return tid

    def consumers(self, tid: int) -> list[int]:
        return [i for i, op in enumerate(self.ops) if tid in op.inputs]

    def producer(self, tid: int) -> int | None:
        for i, op in enumerate(self.ops):
            if tid in op.outputs:
                return i
        return None
