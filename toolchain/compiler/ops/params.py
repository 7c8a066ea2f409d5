"""The parameter structs of `firmware/kernels/include/tm_nn.h` as frozen dataclasses.

Each one renders as a C designated initialiser (`{ .stride = { .h = 2, .w = 2 }, ... }`), so a field
renamed, added or reordered in the header can never silently shift values: the C compiler refuses a
field it does not know, and an omitted one is zero, never its neighbour's value.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Symbol:
    """A C object the Emitter declared (a constant array), referenced by name."""
    name: str

    def __post_init__(self):
        if not _IDENTIFIER.fullmatch(self.name):
            raise ValueError(f"not a C identifier: {self.name!r}")


@dataclass(frozen=True)
class ArenaPointer:
    """`tm_arena + offset`: a scratch buffer the planner placed in the arena (of memory region `region`: see
    planner.arena_symbol)."""
    offset: int
    region: str = ""


def arena_symbol(region: str) -> str:
    """The C array of the arena part in memory region `region` ("": the main RAM's, `tm_arena`)."""
    return f"tm_arena_{region}" if region else "tm_arena"


def designated(value) -> str:
    """`value` as a C initialiser: dataclasses field by field by name, ints as decimals, floats as
    float literals (struct fields are C float), symbols by name."""
    if dataclasses.is_dataclass(value) and not isinstance(value, (Symbol, ArenaPointer)):
        inits = ", ".join(f".{f.name} = {designated(getattr(value, f.name))}" for f in dataclasses.fields(value))
        return f"{{ {inits} }}"
    if isinstance(value, Symbol):
        return value.name
    if isinstance(value, ArenaPointer):
        return f"{arena_symbol(value.region)} + {int(value.offset)}"
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(np.float32(value))!r}f"
    raise TypeError(f"cannot render {type(value).__name__} as a C initialiser")


class CStruct:
    """A struct of tm_nn.h: CTYPE is its C name, PREFIX starts the names of its emitted constants."""
    CTYPE: ClassVar[str]
    PREFIX: ClassVar[str]


# ---- building blocks -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tile:
    h: int
    w: int


@dataclass(frozen=True)
class Activation:
    min: int
    max: int


@dataclass(frozen=True)
class Dims(CStruct):
    CTYPE: ClassVar[str] = "tm_dims"
    PREFIX: ClassVar[str] = "dims"
    n: int
    h: int
    w: int
    c: int


@dataclass(frozen=True)
class Context(CStruct):
    CTYPE: ClassVar[str] = "tm_context"
    PREFIX: ClassVar[str] = "ctx"
    buf: ArenaPointer
    size: int


@dataclass(frozen=True)
class Quant(CStruct):
    CTYPE: ClassVar[str] = "tm_quant"
    PREFIX: ClassVar[str] = "quant"
    multiplier: Symbol
    shift: Symbol
    per_channel: int


# ---- one per kernel --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Conv2DParams(CStruct):
    CTYPE: ClassVar[str] = "tm_conv2d_params"
    PREFIX: ClassVar[str] = "conv2d"
    input_offset: int
    output_offset: int
    stride: Tile
    padding: Tile
    dilation: Tile
    activation: Activation


@dataclass(frozen=True)
class DepthwiseConv2DParams(CStruct):
    CTYPE: ClassVar[str] = "tm_depthwise_conv2d_params"
    PREFIX: ClassVar[str] = "dwconv2d"
    input_offset: int
    output_offset: int
    ch_mult: int
    stride: Tile
    padding: Tile
    dilation: Tile
    activation: Activation


@dataclass(frozen=True)
class FullyConnectedParams(CStruct):
    CTYPE: ClassVar[str] = "tm_fully_connected_params"
    PREFIX: ClassVar[str] = "fc"
    input_offset: int
    filter_offset: int
    output_offset: int
    activation: Activation


@dataclass(frozen=True)
class FullyConnectedQuant(CStruct):
    CTYPE: ClassVar[str] = "tm_fully_connected_quant"
    PREFIX: ClassVar[str] = "fc_quant"
    mantissa_hi: Symbol
    mantissa_lo: Symbol
    exponent: Symbol
    per_channel: int


@dataclass(frozen=True)
class FullyConnectedS16Quant(CStruct):
    CTYPE: ClassVar[str] = "tm_fully_connected_s16_quant"
    PREFIX: ClassVar[str] = "fc_s16_quant"
    scale: Symbol
    per_channel: int


@dataclass(frozen=True)
class AvgPool2DParams(CStruct):
    CTYPE: ClassVar[str] = "tm_avg_pool2d_params"
    PREFIX: ClassVar[str] = "avgpool"
    stride: Tile
    padding: Tile
    filter: Tile
    activation: Activation


@dataclass(frozen=True)
class MaxPool2DParams(AvgPool2DParams):
    CTYPE: ClassVar[str] = "tm_max_pool2d_params"
    PREFIX: ClassVar[str] = "maxpool"


@dataclass(frozen=True)
class MeanParams(CStruct):
    CTYPE: ClassVar[str] = "tm_mean_params"
    PREFIX: ClassVar[str] = "mean"
    input_offset: int
    output_offset: int
    multiplier: int
    shift: int


@dataclass(frozen=True)
class AddParams(CStruct):
    CTYPE: ClassVar[str] = "tm_add_params"
    PREFIX: ClassVar[str] = "add"
    input1_offset: int
    input2_offset: int
    output_offset: int
    left_shift: int
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int
    activation: Activation


@dataclass(frozen=True)
class SoftmaxParams(CStruct):
    CTYPE: ClassVar[str] = "tm_softmax_params"
    PREFIX: ClassVar[str] = "softmax"
    input_multiplier: int
    input_left_shift: int
    diff_min: int


@dataclass(frozen=True)
class SoftmaxS16Params(CStruct):
    CTYPE: ClassVar[str] = "tm_softmax_s16_params"
    PREFIX: ClassVar[str] = "softmax_s16"
    input_multiplier: int
    input_left_shift: int
    exp_lut: Symbol
    one_over_one_plus_x_lut: Symbol


@dataclass(frozen=True)
class LutS16Params(CStruct):
    CTYPE: ClassVar[str] = "tm_lut_s16_params"
    PREFIX: ClassVar[str] = "lut_s16"
    sigmoid_table: Symbol
    input_multiplier: int
    input_left_shift: int
    tanh: int


@dataclass(frozen=True)
class PadParams(CStruct):
    CTYPE: ClassVar[str] = "tm_pad_params"
    PREFIX: ClassVar[str] = "pad"
    pad_before: Dims
    pad_value: int


@dataclass(frozen=True)
class ConcatenationParams(CStruct):
    CTYPE: ClassVar[str] = "tm_concatenation_params"
    PREFIX: ClassVar[str] = "concat"
    copy_size: Symbol
    num_inputs: int
    outer: int


@dataclass(frozen=True)
class SplitParams(CStruct):
    CTYPE: ClassVar[str] = "tm_split_params"
    PREFIX: ClassVar[str] = "split"
    copy_size: Symbol
    num_outputs: int
    outer: int


@dataclass(frozen=True)
class GatherParams(CStruct):
    CTYPE: ClassVar[str] = "tm_gather_params"
    PREFIX: ClassVar[str] = "gather"
    indices: Symbol
    num_indices: int
    outer: int
    axis_size: int
    inner: int


@dataclass(frozen=True)
class StridedSliceParams(CStruct):
    CTYPE: ClassVar[str] = "tm_strided_slice_params"
    PREFIX: ClassVar[str] = "slice"
    begin: Dims
    stride: Dims


@dataclass(frozen=True)
class TransposeParams(CStruct):
    CTYPE: ClassVar[str] = "tm_transpose_params"
    PREFIX: ClassVar[str] = "transpose"
    perm: Dims  # the input axis (0 n, 1 h, 2 w, 3 c) of each output axis


@dataclass(frozen=True)
class QuantizeParams(CStruct):
    """tm_requantize_params: QUANTIZE int8 -> int8; the ReLUs use the same fields."""
    CTYPE: ClassVar[str] = "tm_quantize_params"
    PREFIX: ClassVar[str] = "quantize"
    input_offset: int
    output_offset: int
    multiplier: int
    shift: int
    activation: Activation


@dataclass(frozen=True)
class ReluParams(QuantizeParams):
    CTYPE: ClassVar[str] = "tm_relu_params"
    PREFIX: ClassVar[str] = "relu"


@dataclass(frozen=True)
class QuantizeF32Params(CStruct):
    """tm_affine_params: float -> int8 at the model's input."""
    CTYPE: ClassVar[str] = "tm_quantize_f32_params"
    PREFIX: ClassVar[str] = "quantize_f32"
    scale: float
    zero_point: int


@dataclass(frozen=True)
class DequantizeParams(QuantizeF32Params):
    CTYPE: ClassVar[str] = "tm_dequantize_params"
    PREFIX: ClassVar[str] = "dequantize"


@dataclass(frozen=True)
class LutParams(CStruct):
    CTYPE: ClassVar[str] = "tm_lut_params"
    PREFIX: ClassVar[str] = "lut"
    table: Symbol


@dataclass(frozen=True)
class PreluParams(CStruct):
    CTYPE: ClassVar[str] = "tm_prelu_params"
    PREFIX: ClassVar[str] = "prelu"
    input_offset: int
    alpha_offset: int
    output_offset: int
    positive_multiplier: int
    positive_shift: int
    negative_multiplier: int
    negative_shift: int


@dataclass(frozen=True)
class TransposeConvParams(CStruct):
    CTYPE: ClassVar[str] = "tm_transpose_conv_params"
    PREFIX: ClassVar[str] = "tconv"
    input_offset: int
    output_offset: int
    stride: Tile
    padding: Tile  # top, left: in the output's frame, as LiteRT computes it from the output size
    activation: Activation


@dataclass(frozen=True)
class ReduceParams(CStruct):
    CTYPE: ClassVar[str] = "tm_reduce_params"
    PREFIX: ClassVar[str] = "reduce"
    kind: int  # tm_reduce_kind: 0 TM_REDUCE_MAX, 1 TM_REDUCE_MIN


NULL = Symbol("NULL")  # a pointer field a kernel mode does not read


@dataclass(frozen=True)
class ResizeAxis:
    lower: Symbol
    upper: Symbol
    weight: Symbol


@dataclass(frozen=True)
class ResizeParams(CStruct):
    CTYPE: ClassVar[str] = "tm_resize_params"
    PREFIX: ClassVar[str] = "resize"
    rows: ResizeAxis
    cols: ResizeAxis
    bilinear: int
