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
    log: str = ""

    @property
    def complete(self) -> bool:
        return self.status is not None

    def outputs(self, plan: dict, k: int) -> list[np.ndarray]:
        """Sample k's outputs as arrays, sliced from the raw output buffer as the plan lays it out."""
        raw = self.samples[k].output
        return [np.frombuffer(raw[o["offset"]: o["offset"] + o["bytes"]], dtype=np.dtype(o["dtype"]))
                .reshape(o["shape"]) for o in plan["outputs"]]


def _kv(tokens: list[str]) -> dict[str, int | str]:
    out: dict[str, int | str] = {}
    for tok in tokens:
        if "=" in tok:
            key, value = tok.split("=", 1)
            out[key] = int(value) if value.lstrip("-").isdigit() else value
    return out


def parse(log: str) -> RunResult:
    result: RunResult | None = None
    for line in log.splitlines():
        line = line.strip()
        if not line.startswith("TM "):
            continue
        tokens = line.split()
        kind, rest = tokens[1], tokens[2:]
        if kind == "BEGIN":
            header = _kv(rest)
            result = RunResult(str(header.get("board", "")), header, [])
        elif kind == "FAULT":
            result = result or RunResult("", {}, [])
            result.fault = line[3:]
        elif result is None:
            continue
        elif kind == "LAYER":
            result.layers.append((rest[1], int(rest[2])))
        elif kind == "SAMPLE":
            kv = _kv(rest[1:])
            result.samples.append(Sample(int(rest[0]), int(kv["exit"]), int(kv["ticks"]), int(kv["cycles"]),
                                         bytes.fromhex(str(kv.get("out", ""))), []))
        elif kind == "LAYERTICKS":
            sample = result.samples[-1]
            if int(rest[0]) != sample.index:
                raise ToolchainError(f"protocol error: LAYERTICKS for sample {rest[0]} after sample {sample.index}")
            sample.layer_ticks = [None if t == "-" else int(t) for t in rest[1:]]
        elif kind == "STACK":
            kv = _kv(rest)
            result.stack_used, result.stack_size = int(kv["used"]), int(kv["size"])
        elif kind == "ERROR":
            result.error = line[3:]
        elif kind == "END":
            result.status = int(_kv(rest)["status"])
    if result is None:
        raise ToolchainError("the firmware printed no 'TM BEGIN' line", "is the UART of the board set up right?")
    result.log = log
    return result
