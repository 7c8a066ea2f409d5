"""Structured channel pruning (and its inverse, widening) of functional tf_keras models.

Every Conv2D and Dense layer *produces* a channel group: its output channels. Walking the graph, each
tensor carries a channel map (per entry of its last axis: which group and which channel of it), so a
removed channel can be followed wherever it goes:
  - BatchNormalization, activations, dropout, pooling, padding keep the map; DepthwiseConv2D repeats
    each entry `depth_multiplier` times; Flatten repeats the map once per spatial position (NHWC order);
    Concatenate (channel axis) joins maps; the zoo's ChannelSlice cuts one.
  - Add (and the other element-wise merges) *ties* the groups of its inputs: channel i of each input
    meets channel i of the others, so a tied group keeps or drops each channel everywhere at once
    (ResNet's shortcut and residual branch).
  - A ChannelSlice (T-RecX's exit reads the first 32 of 64 channels) cuts its group into segments;
    each segment is pruned by the same fraction, so the exit keeps its share of the channels.
  - Groups that reach a model output, the model input, or a layer this module does not know (Reshape,
    custom layers, grouped convolutions...) are frozen: never pruned or widened.

Pruning keeps the channels whose filters have the largest L1 norm. A filter followed by a
BatchNormalization is scored as it will be deployed, BN folded in (|gamma| / sqrt(var + eps) times its
L1 norm); the scores of the layers of a tied group are normalised per layer and summed. The smaller
model is rebuilt from the layer configs (filters / units / slice bounds changed) and the surviving
weights are copied: conv / dense kernels on both axes, depthwise kernels, biases and BN statistics.
A MAC target is met by bisection on the fraction of channels kept in every prunable group.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from toolchain.compress.graph import calls, kind
from toolchain.errors import ToolchainError
from toolchain.tf import import_tf

Entry = tuple[int, int]  # (group, channel within the group)

PASSTHROUGH = frozenset({
    "Activation", "ReLU", "LeakyReLU", "ELU", "ThresholdedReLU", "Dropout", "SpatialDropout2D", "AlphaDropout",
    "GaussianDropout", "GaussianNoise", "ActivityRegularization", "AveragePooling2D", "MaxPooling2D",
    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "ZeroPadding2D", "Cropping2D", "UpSampling2D",
})
ELEMENTWISE = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"})
PRODUCERS = frozenset({"Conv2D", "Dense"})


class Groups:
    """Union-find over channel groups; a root holds its size, frozen flag, segment cuts and producers."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.size: list[int] = []
        self.frozen: list[bool] = []
        self.cuts: list[set[int]] = []
        self.producers: list[list[str]] = []

    def new(self, size: int, *, frozen: bool = False, producer: str | None = None) -> int:
        g = len(self.parent)
        self.parent.append(g)
        self.size.append(int(size))
        self.frozen.append(frozen)
        self.cuts.append({0, int(size)})
        self.producers.append([producer] if producer else [])
        return g

    def find(self, g: int) -> int:
        while self.parent[g] != g:
            self.parent[g] = self.parent[self.parent[g]]
            g = self.parent[g]
        return g

    def union(self, a: int, b: int) -> int:
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[b] = a
            self.frozen[a] = self.frozen[a] or self.frozen[b]
            self.cuts[a] |= self.cuts[b]
            self.producers[a] += self.producers[b]
        return a

    def freeze(self, entries: list[Entry]) -> None:
        for g in {g for g, _ in entries}:
            self.frozen[self.find(g)] = True

    def identity(self, entries: list[Entry]) -> int | None:
        """The root when `entries` are exactly channels 0..size-1 of one group, in order."""
        if not entries:
            return None
        root = self.find(entries[0][0])
        if self.size[root] != len(entries):
            return None
        ok = all(self.find(g) == root and i == k for k, (g, i) in enumerate(entries))
        return root if ok else None

    def roots(self) -> list[int]:
        return sorted({self.find(g) for g in range(len(self.parent))})

    def prunable(self) -> list[int]:
        return [r for r in self.roots() if not self.frozen[r] and self.size[r] >= 2]

    def segments(self, root: int) -> list[tuple[int, int]]:
        cuts = sorted(c for c in self.cuts[root] if 0 <= c <= self.size[root])
        return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


@dataclass
class ChannelGraph:
    groups: Groups
    layers: dict[str, object] = field(default_factory=dict)  # name -> layer
    maps_in: dict[str, list[list[Entry]]] = field(default_factory=dict)  # per layer, per input
    maps_out: dict[str, list[Entry]] = field(default_factory=dict)  # per layer, its (first) output
    produced: dict[str, int] = field(default_factory=dict)  # producer layer -> its group
    bn_after: dict[str, object] = field(default_factory=dict)  # producer layer -> BN reading its output


def _last_dim(tensor) -> int:
    shape = tuple(tensor.shape)
    return int(shape[-1]) if len(shape) >= 2 and shape[-1] is not None else 1


def _channels_last_axis(layer, rank: int) -> bool:
    axis = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    return len(axis) == 1 and axis[0] in (-1, rank - 1)


def analyze(model) -> ChannelGraph:
    """Follow every channel of `model` through its graph (see the module docstring)."""
    graph_calls = calls(model)
    uses: dict[str, int] = {}
    for c in graph_calls:
        uses[c.layer.name] = uses.get(c.layer.name, 0) + 1
    g = Groups()
    cg = ChannelGraph(g)
    maps: dict[int, list[Entry]] = {}
    made_by: dict[int, str] = {}  # tensor -> the producer layer that wrote it
    for c in graph_calls:
        layer, k = c.layer, kind(c.layer)
        ins = [maps[id(t)] for t in c.inputs]
        cg.layers[layer.name] = layer
        cg.maps_in[layer.name] = ins
        out = _propagate(cg, layer, k, c, ins, shared=uses[layer.name] > 1)
        if out is None:  # a layer we do not follow: its inputs are frozen, its outputs new frozen groups
            for m in ins:
                g.freeze(m)
            outs = [[(g.new(_last_dim(t), frozen=True), i) for i in range(_last_dim(t))] for t in c.outputs]
        else:
            outs = [out]
        for t, m in zip(c.outputs, outs):
            maps[id(t)] = m
        cg.maps_out[layer.name] = outs[0]
        if k in PRODUCERS and out is not None:
            made_by[id(c.outputs[0])] = layer.name
        if k == "BatchNormalization" and out is not None and id(c.inputs[0]) in made_by:
            cg.bn_after[made_by[id(c.inputs[0])]] = layer
    for t in model.outputs:
        g.freeze(maps[id(t)])
    return cg


def _propagate(cg: ChannelGraph, layer, k: str, c, ins: list[list[Entry]], shared: bool) -> list[Entry] | None:
    """The output channel map of one layer call, or None when the layer is not followed."""
    g = cg.groups
    if k == "InputLayer":
        size = _last_dim(c.outputs[0])
        return [(g.new(size, frozen=True), i) for i in range(size)]
    if shared or len(c.outputs) != 1:
        return None
    config = layer.get_config()
    softmax = config.get("activation") == "softmax"
    if k in PRODUCERS:
        if k == "Conv2D" and (layer.groups != 1 or layer.data_format != "channels_last"):
            return None
        size = int(layer.filters if k == "Conv2D" else layer.units)
        group = g.new(size, frozen=softmax, producer=layer.name)
        cg.produced[layer.name] = group
        return [(group, i) for i in range(size)]
    if k == "DepthwiseConv2D":
        if layer.data_format != "channels_last":
            return None
        return [e for e in ins[0] for _ in range(int(layer.depth_multiplier))]
    if k == "BatchNormalization":
        return ins[0] if _channels_last_axis(layer, len(c.inputs[0].shape)) else None
    if k in PASSTHROUGH:
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            return None
        if softmax:
            g.freeze(ins[0])
        return ins[0]
    if k == "Flatten":
        spatial = math.prod(int(d) for d in c.inputs[0].shape[1:-1])
        return ins[0] * spatial
    if k in ELEMENTWISE:
        roots = [g.identity(m) for m in ins]
        if any(r is None for r in roots) or len({len(m) for m in ins}) != 1:
            for m in ins:
                g.freeze(m)
        else:
            for r in roots[1:]:
                g.union(roots[0], r)
        return ins[0]
    if k == "Concatenate":
        rank = len(c.inputs[0].shape)
        if layer.axis not in (-1, rank - 1):
            return None
        return [e for m in ins for e in m]
    if k == "custom:ChannelSlice":
        root = g.identity(ins[0])
        if root is None:
            g.freeze(ins[0])
        else:
            g.cuts[root] |= {layer.start, layer.stop}
        return ins[0][layer.start:layer.stop]
    return None


# ---- scoring, choosing, counting ------------------------------------------------------------------

def _filter_scores(layer, bn) -> np.ndarray:
    kernel = layer.get_weights()[0]
    norms = np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)
    if bn is not None:
        gamma = bn.gamma.numpy() if bn.gamma is not None else np.ones_like(norms)
        norms = norms * np.abs(gamma) / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    mean = float(norms.mean())
    return norms / mean if mean > 0 else norms


def channel_scores(cg: ChannelGraph, root: int) -> np.ndarray:
    """Per channel of a (tied) group: the sum of its producers' normalised, BN-folded L1 filter norms."""
    total = np.zeros(cg.groups.size[root])
    for name in cg.groups.producers[root]:
        total += _filter_scores(cg.layers[name], cg.bn_after.get(name))
    return total


Keep = dict[int, np.ndarray]  # prunable root -> kept channels (sorted); other groups keep all


def choose(cg: ChannelGraph, keep_fraction: float, round_to: int = 1, scores: dict | None = None) -> Keep:
    """Channels to keep: in every segment of every prunable group, the best `keep_fraction` of them."""
    g = cg.groups
    keep: Keep = {}
    for root in g.prunable():
        s = scores[root] if scores is not None else channel_scores(cg, root)
        chosen = []
        for a, b in g.segments(root):
            n = b - a
            k = max(1, min(n, round_to * round(n * keep_fraction / round_to)))
            order = np.argsort(-s[a:b], kind="stable")
            chosen.extend(a + order[:k])
        keep[root] = np.array(sorted(chosen), dtype=np.int64)
    return keep


def kept_positions(cg: ChannelGraph, keep: Keep, entries: list[Entry]) -> np.ndarray:
    """Indices into `entries` (a tensor's last axis) that survive."""
    g = cg.groups
    sets = {root: set(ch.tolist()) for root, ch in keep.items()}
    out = []
    for k, (group, i) in enumerate(entries):
        root = g.find(group)
        if root not in sets or i in sets[root]:
            out.append(k)
    return np.array(out, dtype=np.int64)


def layer_macs(layer) -> int:
    """MACs of one Conv2D / DepthwiseConv2D / Dense layer (the same count as `zoo.count_macs`)."""
    k = kind(layer)
    out = math.prod(int(d) for d in layer.output_shape[1:])
    if k == "DepthwiseConv2D":
        return out * math.prod(layer.kernel_size)
    if k == "Conv2D":
        return out * math.prod(layer.kernel_size) * int(layer.input_shape[-1]) // layer.groups
    if k == "Dense":
        return out * int(layer.input_shape[-1])
    return 0


def estimate_macs(cg: ChannelGraph, keep: Keep) -> int:
    """MACs of the model once `keep` is applied, from the original layers' counts."""
    total = 0.0
    for name, layer in cg.layers.items():
        macs = layer_macs(layer)
        if not macs:
            continue
        ins = cg.maps_in[name][0]
        ratio_in = len(kept_positions(cg, keep, ins)) / len(ins)
        if kind(layer) == "DepthwiseConv2D":
            total += macs * ratio_in
        else:
            outs = cg.maps_out[name]
            total += macs * ratio_in * len(kept_positions(cg, keep, outs)) / len(outs)
    return int(round(total))


def fraction_for_macs(cg: ChannelGraph, reduction: float, round_to: int = 1) -> float:
    """The keep fraction whose MACs come closest to (1 - reduction) of the model's."""
    scores = {root: channel_scores(cg, root) for root in cg.groups.prunable()}
    base = estimate_macs(cg, {})
    target = base * (1.0 - reduction)

    def macs(f: float) -> int:
        return estimate_macs(cg, choose(cg, f, round_to, scores))

    floor = macs(0.0)
    if floor > target:
        raise ToolchainError(
            f"removing {reduction:.0%} of the MACs needs more than the prunable channels give: even one channel "
            f"per group leaves {floor / base:.0%} of them",
            "frozen channels (model input and outputs, unknown layers) cannot be removed; ask for less")
    lo, hi = 0.0, 1.0
    for _ in range(24):
        mid = (lo + hi) / 2
        if macs(mid) > target:
            hi = mid
        else:
            lo = mid
    return min((lo, hi), key=lambda f: abs(macs(f) - target))


# ---- rebuilding ------------------------------------------------------------------------------------

def rebuild(model, sizes: dict[str, int], slices: dict[str, tuple[int, int]], name: str | None = None):
    """A fresh model of the same graph with new filters/units and ChannelSlice bounds (new weights)."""
    _, keras = import_tf()
    from toolchain.zoo.layers import CUSTOM_OBJECTS

    def clone(layer):
        config = layer.get_config()
        if layer.name in sizes:
            config["filters" if "filters" in config else "units"] = int(sizes[layer.name])
        if layer.name in slices:
            config["start"], config["stop"] = (int(v) for v in slices[layer.name])
        return type(layer).from_config(config)

    with keras.utils.custom_object_scope(CUSTOM_OBJECTS):
        new = keras.models.clone_model(model, clone_function=clone)
    if name:
        new._name = name
    return new


def _slice_bounds(cg: ChannelGraph, keep: Keep) -> dict[str, tuple[int, int]]:
    out = {}
    for name, layer in cg.layers.items():
        if kind(layer) == "custom:ChannelSlice":
            kept = kept_positions(cg, keep, cg.maps_in[name][0])
            out[name] = (int(np.sum(kept < layer.start)), int(np.sum(kept < layer.stop)))
    return out


def _pruned_weights(cg: ChannelGraph, keep: Keep, name: str) -> list[np.ndarray]:
    layer = cg.layers[name]
    weights = layer.get_weights()
    k = kind(layer)
    if not weights or k not in ("Conv2D", "Dense", "DepthwiseConv2D", "BatchNormalization"):
        return weights
    in_idx = kept_positions(cg, keep, cg.maps_in[name][0])
    if k == "BatchNormalization":
        return [w[in_idx] for w in weights]
    if k == "DepthwiseConv2D":
        kernel = weights[0][:, :, in_idx, :]
        rest = [w.reshape(-1, kernel.shape[-1])[in_idx].reshape(-1) for w in weights[1:]]
        return [kernel, *rest]
    out_idx = kept_positions(cg, keep, cg.maps_out[name])
    kernel = np.take(np.take(weights[0], in_idx, axis=-2), out_idx, axis=-1)
    return [kernel, *(w[out_idx] for w in weights[1:])]


@dataclass(frozen=True)
class ChannelReport:
    keep_fraction: float
    macs_before: int
    macs_after: int
    channels: dict[str, tuple[int, int]]  # producer layer -> (channels before, after)

    @property
    def macs_reduction(self) -> float:
        return 1.0 - self.macs_after / self.macs_before if self.macs_before else 0.0


def prune_channels(model, *, macs_reduction: float | None = None, keep_fraction: float | None = None,
                   round_to: int = 1):
    """A smaller copy of `model` with whole channels removed, surviving weights copied (not fine-tuned).

    Give either `macs_reduction` (the fraction of MACs to remove) or `keep_fraction` (the fraction of
    the channels of every prunable group to keep). Returns (model, ChannelReport).
    """
    from toolchain import zoo

    if (macs_reduction is None) == (keep_fraction is None):
        raise ToolchainError("structured pruning needs exactly one of macs_reduction and keep_fraction")
    if macs_reduction is not None and not 0.0 < macs_reduction < 1.0:
        raise ToolchainError(f"macs_reduction must be in (0, 1), got {macs_reduction}")
    if keep_fraction is not None and not 0.0 < keep_fraction <= 1.0:
        raise ToolchainError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
    cg = analyze(model)
    if not cg.groups.prunable():
        raise ToolchainError(f"model {model.name!r} has no channels that can be pruned",
                             "every channel reaches an output, the input or a layer channel pruning cannot follow")
    if keep_fraction is None:
        keep_fraction = fraction_for_macs(cg, macs_reduction, round_to)
    keep = choose(cg, keep_fraction, round_to)
    sizes = {name: len(keep[cg.groups.find(group)]) for name, group in cg.produced.items()
             if cg.groups.find(group) in keep}
    new = rebuild(model, sizes, _slice_bounds(cg, keep))
    for name in cg.layers:
        weights = _pruned_weights(cg, keep, name)
        if weights:
            new.get_layer(name).set_weights(weights)
    channels = {name: (cg.groups.size[group], sizes.get(name, cg.groups.size[group]))
                for name, group in cg.produced.items()}
    return new, ChannelReport(keep_fraction, zoo.count_macs(model), zoo.count_macs(new), channels)


def widen(model, factor: float, name: str | None = None):
    """The same architecture with every prunable channel group `factor` times as wide (fresh weights).

    The "train large, then compress" teacher: outputs, the input and frozen groups keep their size;
    ChannelSlice bounds scale with their group.
    """
    if factor <= 0:
        raise ToolchainError(f"width factor must be > 0, got {factor}")
    cg = analyze(model)
    g = cg.groups
    new_size = {root: max(1, int(round(g.size[root] * factor))) for root in g.prunable()}
    sizes = {layer: new_size[g.find(group)] for layer, group in cg.produced.items() if g.find(group) in new_size}
    slices = {}
    for lname, layer in cg.layers.items():
        if kind(layer) == "custom:ChannelSlice":
            root = g.identity(cg.maps_in[lname][0])
            if root in new_size:
                scale = new_size[root] / g.size[root]
                slices[lname] = (int(round(layer.start * scale)), max(1, int(round(layer.stop * scale))))
    return rebuild(model, sizes, slices, name=name or f"{model.name}_x{factor:g}")
