"""Parser of the harness's UART line protocol (docs/PROTOCOL.md) into a RunResult."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from toolchain.errors import ToolchainError


@dataclass
class Sample:
    index: int
    exit: int
    ticks: int
    cycles: int
    output: bytes
    layer_ticks: list[int | None]  # None: the layer did not run (early exit)


@dataclass
class RunResult:
    board: str
    header: dict[str, int | str]
    layers: list[tuple[str, int]]  # (op, MACs)
    samples: list[Sample] = field(default_factory=list)
    stack_used: int | None = None
    stack_size: int | None = None
    status: int | None = None
    fault: str | None = None
    error: str | None = None
    exit_code: int | None = None  # from 'TM EXIT code=<n>', the firmware's last line
    # TM_DUMP_TENSORS builds: per sample, (layer, tensor id, raw bytes) in the order the layers ran
    tensors: dict[int, list[tuple[int, int, bytes]]] = field(default_factory=dict)
    log: str = ""

    @property
    def complete(self) -> bool:
        return self.status is not None

    def outputs(self, plan, k: int) -> list[np.ndarray]:
        """Sample k's outputs as arrays, sliced from the raw output buffer as the plan (the compiler's
        `ModelPlan`: runners do not import the compiler) lays it out."""
        raw = self.samples[k].output
        return [np.frombuffer(raw[o.offset: o.offset + o.bytes], dtype=np.dtype(o.dtype))
                .reshape(o.shape) for o in plan.outputs]


def check_finished(result: RunResult, board: str, status: str = "") -> RunResult:
    """`result` unless the firmware faulted, reported an error, or stopped before its END and EXIT code=0 lines;
    `status`: how the host side ended, for the message (e.g. "QEMU status 1, ")."""
    if result.fault:
        raise ToolchainError(f"the firmware faulted on {board}: {result.fault}")
    if result.error or result.exit_code != 0 or not result.complete:
        raise ToolchainError(f"the firmware failed on {board} ({status}firmware exit code {result.exit_code}): "
                             f"{result.error or 'incomplete output'}")
    return result


def _kv(tokens: list[str]) -> dict[str, int | str]:
    out: dict[str, int | str] = {}
    for tok in tokens:
        if "=" in tok:
            key, value = tok.split("=", 1)
            out[key] = int(value) if value.lstrip("-").isdigit() else value
    return out


def _int(kv: dict, key: str, kind: str) -> int:
    if key not in kv:
        raise _Malformed(f"{kind} line without {key}=")
    return _to_int(kv[key], f"{key}=")


def _to_int(value, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise _Malformed(f"{what} is not an integer: {value!r}") from None


def _fields(rest: list[str], n: int, kind: str) -> list[str]:
    if len(rest) < n:
        raise _Malformed(f"{kind} line has {len(rest)} field(s), expected at least {n}")
    return rest


class _Malformed(Exception):
    """A line of the protocol that cannot be read; parse() turns it into a ToolchainError quoting the line."""


def parse(log: str) -> RunResult:
    result: RunResult | None = None
    for line in log.splitlines():
        line = line.strip()
        if not line.startswith("TM "):
            continue
        try:
            result = _parse_line(result, line)
        except _Malformed as exc:
            shown = line if len(line) <= 120 else line[:117] + "..."
            raise ToolchainError(f"protocol error: {exc} (line: {shown!r})",
                                 "the firmware's UART output is garbled or from another harness version") from None
    if result is None:
        raise ToolchainError("the firmware printed no 'TM BEGIN' line", "is the UART of the board set up right?")
    result.log = log
    return result


def _parse_line(result: RunResult | None, line: str) -> RunResult | None:
    tokens = line.split()
    kind, rest = tokens[1], tokens[2:]
    if kind == "BEGIN":
        header = _kv(rest)
        return RunResult(str(header.get("board", "")), header, [])
    if kind == "FAULT":
        result = result or RunResult("", {}, [])
        result.fault = line[3:]
    elif kind == "EXIT":
        result = result or RunResult("", {}, [])
        result.exit_code = _int(_kv(rest), "code", kind)
    elif result is None:
        return None
    elif kind == "LAYER":
        _fields(rest, 3, kind)
        result.layers.append((rest[1], _to_int(rest[2], "the MAC count")))
    elif kind == "SAMPLE":
        _fields(rest, 1, kind)
        kv = _kv(rest[1:])
        hex_out = next((tok[4:] for tok in rest[1:] if tok.startswith("out=")), "")  # raw: "00ff" is not int 255
        try:
            output = bytes.fromhex(hex_out)
        except ValueError:
            raise _Malformed("out= is not hex") from None
        result.samples.append(Sample(_to_int(rest[0], "the sample index"), _int(kv, "exit", kind),
                                     _int(kv, "ticks", kind), _int(kv, "cycles", kind), output, []))
    elif kind == "LAYERTICKS":
        _fields(rest, 1, kind)
        if not result.samples:
            raise _Malformed("LAYERTICKS before any SAMPLE line")
        sample = result.samples[-1]
        if _to_int(rest[0], "the sample index") != sample.index:
            raise ToolchainError(f"protocol error: LAYERTICKS for sample {rest[0]} after sample {sample.index}")
        sample.layer_ticks = [None if t == "-" else _to_int(t, "a layer tick count") for t in rest[1:]]
    elif kind == "STACK":
        kv = _kv(rest)
        result.stack_used, result.stack_size = _int(kv, "used", kind), _int(kv, "size", kind)
    elif kind == "TENSOR":
        _fields(rest, 4, kind)
        try:
            raw = bytes.fromhex(rest[3])
        except ValueError:
            raise _Malformed("the tensor data is not hex") from None
        sample, layer, tensor = (_to_int(v, f"the {what}") for v, what in zip(rest[:3], ("sample", "layer", "tensor")))
        result.tensors.setdefault(sample, []).append((layer, tensor, raw))
    elif kind == "ERROR":
        result.error = line[3:]
    elif kind == "END":
        result.status = _int(_kv(rest), "status", kind)
    return result
