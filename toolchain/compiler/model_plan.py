"""The compiler's report on what it generated (`model_plan.json`), as typed, frozen dataclasses.

`ModelPlan.save`/`ModelPlan.load` are the only places that write or read the JSON: every other module
works with the attributes. A file that does not match the layout is one `ToolchainError`, not a KeyError later.
"""
from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

from toolchain.errors import ToolchainError
from toolchain.fsutil import write_atomic

PLAN_FILE = "model_plan.json"

Shape = tuple[int, ...]


@dataclass(frozen=True)
class TensorIO:
    """A model input or output: where it lies in the input/output buffer and how it is quantized."""
    name: str
    tensor: str
    dtype: str
    shape: Shape
    bytes: int
    scale: float | None
    zero_point: int | None
    offset: int | None = None  # None: described from the .tflite, not yet placed by the planner
    arena_offset: int | None = None  # where the tensor lies in the arena (the model reads/writes it there)

    @property
    def sample_shape(self) -> Shape:
        """The shape of one sample: without a leading batch dimension of 1."""
        return self.shape[1:] if self.shape and self.shape[0] == 1 else self.shape

    @classmethod
    def from_dict(cls, d: dict) -> TensorIO:
        return cls(str(d["name"]), str(d.get("tensor", d["name"])), str(d["dtype"]), tuple(d["shape"]),
                   int(d["bytes"]), d.get("scale"), d.get("zero_point"), d.get("offset"), d.get("arena_offset"))


@dataclass(frozen=True)
class LayerInfo:
    index: int
    op: str
    location: str
    macs: int
    inputs: tuple[Shape, ...]
    outputs: tuple[Shape, ...]
    band_rows: int = 0  # > 0: run in bands of this many rows (of stage_end's output), its output over its input
    stage_end: int | None = None  # a patch stage: this layer's code computes layers index..stage_end band by band
    in_stage: int | None = None  # computed by the patch stage starting at that layer
    computed_macs: int | None = None  # MACs the layer's code computes (a patch stage: all its layers, halo rows
    # computed twice included); None: `macs`

    @classmethod
    def from_dict(cls, d: dict) -> LayerInfo:
        return cls(int(d["index"]), str(d["op"]), str(d["location"]), int(d["macs"]),
                   tuple(tuple(s) for s in d["inputs"]), tuple(tuple(s) for s in d["outputs"]),
                   int(d.get("band_rows", 0)), d.get("stage_end"), d.get("in_stage"), d.get("computed_macs"))


@dataclass(frozen=True)
class ArenaTensor:
    """A tensor (or a layer's scratch buffer, id None) in the arena and the layers it is alive for."""
    id: int | None
    name: str
    dtype: str
    shape: Shape
    bytes: int
    offset: int
    first_layer: int
    last_layer: int
    region: str = ""  # the memory region's part of the arena ("": the main RAM's; offsets are within the part)

    @classmethod
    def from_dict(cls, d: dict) -> ArenaTensor:
        return cls(d["id"], str(d["name"]), str(d["dtype"]), tuple(d["shape"]), int(d["bytes"]), int(d["offset"]),
                   int(d["first_layer"]), int(d["last_layer"]), str(d.get("region", "")))


@dataclass(frozen=True)
class OverlapInfo:
    """At `layer`, the output tensor `writer` lies over the input tensor `reader` it finishes, `shift` bytes after
    it (negative: before it); the layer never writes over input bytes it still reads."""
    layer: int
    reader: int
    writer: int
    shift: int

    @classmethod
    def from_dict(cls, d: dict) -> OverlapInfo:
        return cls(int(d["layer"]), int(d["reader"]), int(d["writer"]), int(d["shift"]))


@dataclass(frozen=True)
class ExitInfo:
    """An early exit: the model may return after `layers` layers with `output`; `macs` are of that path."""
    index: int
    output: str
    layers: int
    macs: int

    @classmethod
    def from_dict(cls, d: dict) -> ExitInfo:
        return cls(int(d["index"]), str(d["output"]), int(d["layers"]), int(d["macs"]))


@dataclass(frozen=True)
class ModelPlan:
    source: str
    source_sha256: str
    toolchain_version: str
    target: str
    arena_bytes: int
    live_peak_bytes: int
    weights_bytes: int
    macs: int
    ops_in_model: int
    layers_generated: int
    inputs: tuple[TensorIO, ...]
    outputs: tuple[TensorIO, ...]
    layers: tuple[LayerInfo, ...]
    tensors: tuple[ArenaTensor, ...]
    exits: tuple[ExitInfo, ...] = ()
    reference: str = "litert"  # whose rounding the code reproduces: litert (BUILTIN_REF) or tflm
    overlaps: tuple[OverlapInfo, ...] = ()
    plan_strategy: str = ""  # the placement order that gave the smallest arena
    arena_regions: dict[str, int] | None = None  # split over memory regions: region -> bytes (they sum to arena_bytes)

    def ram_parts(self) -> dict[str, int]:
        """The arena by part: the model's inputs and outputs (inside it), the largest layer scratch, and the rest
        (activations at the peak and placement slack); they add up to arena_bytes."""
        inputs = sum(t.bytes for t in self.inputs)
        outputs = sum(t.bytes for t in self.outputs)
        scratch = max((t.bytes for t in self.tensors if t.id is None), default=0)
        return {"inputs": inputs, "outputs": outputs, "largest scratch": scratch,
                "other activations": max(self.arena_bytes - inputs - outputs - scratch, 0)}

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]

    def to_dict(self) -> dict:
        """The JSON layout of model_plan.json (shapes as lists)."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> ModelPlan:
        nested = {"inputs": TensorIO, "outputs": TensorIO, "layers": LayerInfo, "tensors": ArenaTensor,
                  "exits": ExitInfo, "overlaps": OverlapInfo}
        values = {}
        for f in fields(cls):
            if f.name in nested:
                values[f.name] = tuple(nested[f.name].from_dict(x) for x in d.get(f.name, []))
            elif f.name in d or f.default is MISSING:
                values[f.name] = d[f.name]
        return cls(**values)

    def save(self, directory: Path | str) -> Path:
        path = Path(directory) / PLAN_FILE
        write_atomic(path, self.to_json())
        return path

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def load(cls, directory: Path | str) -> ModelPlan:
        """The plan of a compiled model directory."""
        path = Path(directory) / PLAN_FILE
        if not path.is_file():
            raise ToolchainError(f"{directory} is not a compiled model (no {PLAN_FILE})",
                                 f"run `tinyml compile MODEL.tflite -o {directory}` first")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ToolchainError(f"{path} is not a model plan this toolchain wrote ({type(exc).__name__}: {exc})",
                                 "compile the model again") from exc
