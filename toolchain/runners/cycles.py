"""Estimated cycles (no wait states) from the TCG plugin's per-class instruction counts.

The plugin (`plugin/tm_classify.h`) sorts every executed instruction into a timing class; a core's `CycleModel`
prices each class. Cycles = sum over classes of count x cost, + `xfer` x (registers moved by LDM/STM/PUSH/POP/
LDRD/STRD) + `taken` x (conditional branches taken). P is the pipeline refill after a taken branch (1-3 on the
M3/M4 by their TRMs: we use P = 2 everywhere). docs/CYCLES.md says what this models and what it does not.

| class        | M3    | M4    | M33   | M55   | M7  | source / simplification                                     |
|--------------|-------|-------|-------|-------|-----|-------------------------------------------------------------|
| alu          | 1     | 1     | 1     | 1     | 1   | M3 TRM 18.2, M4 TRM 3.3.1 (data processing, IT, extend)     |
| load         | 2     | 2     | 2     | 2     | 1   | TRM tables (LDR* 2); M7: pipelined, load-use ignored        |
| load_piped   | 1     | 1     | 1     | 1     | 1   | M4 TRM 3.3.2: after an LDR without writeback, independent   |
| store        | 1     | 1     | 1     | 1     | 1   | M4 TRM 3.3.2: "STR Rx,[Ry,#imm] is always one cycle"        |
| store_reg    | 2     | 2     | 2     | 2     | 1   | M4 TRM table 3-1 (STR 2): register offset, not after an LDR |
| multi        | 1+N   | 1+N   | 1+N   | 1+N   | 1+N | LDM/STM/PUSH/POP/LDRD/STRD/VPUSH..., N in `xfer`            |
| multi_pc     | 1+N+P | 1+N+P | 1+N+P | 1+N+P | 2+N | POP/LDM with pc; M7: predicted return                       |
| load_pc      | 2+P   | 2+P   | 2+P   | 2+P   | 2   | LDR pc: load + refill (assumed)                             |
| branch       | 1+P   | 1+P   | 1+P   | 1+P   | 2   | B, BL, BX, BLX, MOV/ADD pc; M7: predicted, 1 + 1            |
| branch_cond  | 1     | 1     | 1     | 1     | 1   | B<c>, CBZ/CBNZ, in IT: "1 or 1+P", + `taken` x P (M7: x 1)  |
| table_branch | 2+P   | 2+P   | 2+P   | 2+P   | 3   | TBB/TBH                                                     |
| mul          | 1     | 1     | 1     | 1     | 1   | MUL, SMUL*, SMUAD, SMMUL (M7: throughput, latency ignored)  |
| mac          | 2     | 1     | 1     | 1     | 1   | MLA, MLS, SMLA*, SMLAD; M3: MLA/MLS 2; M4: single-cycle MAC |
| mul_long     | 4     | 1     | 1     | 1     | 1   | SMULL, UMULL; M3: 3-5 (early termination), middle 4         |
| mac_long     | 5     | 1     | 1     | 1     | 1   | SMLAL*, UMLAL, UMAAL, SMLALD; M3: 4-7, lower middle 5       |
| div          | 7     | 7     | 7     | 7     | 7   | SDIV, UDIV: 2-12 by operands (M3/M4 TRMs), middle 7         |
| fp           | 1     | 1     | 1     | 1     | 1   | FPv4 most 1 (VMLA 3, VDIV/VSQRT 14 not told apart)          |
| fp_mem       | 2     | 2     | 2     | 2     | 1   | VLDR/VSTR (FPv4: 2)                                         |
| mve_op       | -     | -     | -     | 2     | -   | M55 dual-beat: 4 beats per 128-bit instruction, 2 a cycle   |
| mve_mem      | -     | -     | -     | 2     | -   | same, loads and stores                                      |
| mve_overlap  | -     | -     | -     | 1     | -   | after one of the other kind (memory vs arithmetic): overlap |
| loop         | -     | -     | -     | 1     | -   | DLS/WLS/DLSTP/WLSTP/LCTP/VCTP (assumed)                     |
| loop_end     | -     | -     | -     | 1     | -   | LE/LETP: no refill, the loop branch is cached (assumed)     |
| barrier      | 1+P   | 1+P   | 1+P   | 1+P   | 1+P | DSB/DMB/ISB: refill; B (the barrier's wait) ignored         |

"-": the core cannot execute the class (priced 1 so a surprise stays visible as instructions). Sources: Cortex-M3
TRM r2p1 (DDI 0337I) 18.2 "Processor instruction timings"; Cortex-M4 TRM r0p1 (DDI 0439B) 3.3.1 Table 3-1 and
3.3.2 "Load/store timings". The Cortex-M33, M55 and M7 TRMs publish no per-instruction timing: the M33 and the
M55's scalar side use the M4 table (in-order cores of the same class, with a single-cycle 32-bit MAC); the M55's
MVE side follows its dual-beat design (Armv8.1-M's beat-wise execution, 4 beats per 128-bit instruction); the M7
is modelled single-issue (its dual issue is ignored: an upper bound for code that pairs, while load-use and MAC
latencies, which can stall its 6-stage pipeline, are ignored too).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

P = 2  # pipeline refill after a taken branch (1-3 in the M3/M4 TRMs: alignment, width, early speculation)

CLASSES = ("alu", "load", "load_piped", "store", "store_reg", "multi", "multi_pc", "load_pc", "branch",
           "branch_cond", "table_branch", "mul", "mac", "mul_long", "mac_long", "div", "fp", "fp_mem", "mve_op",
           "mve_mem", "mve_overlap", "loop", "loop_end", "barrier")
EXTRAS = ("xfer", "taken")  # weighted counters: registers moved by multi/multi_pc; conditional branches taken


@dataclass(frozen=True)
class CycleModel:
    """Cycles per timing class on one core (no wait states); `costs` has every CLASSES and EXTRAS key."""
    core: str
    costs: Mapping[str, float]
    note: str  # how far the table is sourced, one line for reports

    def __post_init__(self):
        missing = set(CLASSES + EXTRAS) - set(self.costs)
        extra = set(self.costs) - set(CLASSES + EXTRAS)
        if missing or extra:
            raise ValueError(f"cycle table {self.core}: missing {sorted(missing)}, unknown {sorted(extra)}")

    def cycles(self, counters: Mapping[str, int]) -> int:
        """Estimated cycles of a span whose per-class executions (and xfer, taken) are `counters`."""
        unknown = set(counters) - set(self.costs)
        if unknown:
            raise ValueError(f"the plugin counted classes the {self.core} table does not price: {sorted(unknown)}")
        return round(sum(self.costs[name] * n for name, n in counters.items()))


def _table(**overrides: float) -> MappingProxyType:
    """The Cortex-M4 table (TRM r0p1, 3.3.1 and 3.3.2) with `overrides`."""
    base = {"alu": 1, "load": 2, "load_piped": 1, "store": 1, "store_reg": 2, "multi": 1, "multi_pc": 1 + P,
            "load_pc": 2 + P, "branch": 1 + P, "branch_cond": 1, "table_branch": 2 + P, "mul": 1, "mac": 1,
            "mul_long": 1, "mac_long": 1, "div": 7, "fp": 1, "fp_mem": 2, "mve_op": 1, "mve_mem": 1,
            "mve_overlap": 1, "loop": 1, "loop_end": 1, "barrier": 1 + P, "xfer": 1, "taken": P}
    unknown = set(overrides) - set(base)
    assert not unknown, unknown
    return MappingProxyType({**base, **overrides})


MODELS: dict[str, CycleModel] = {m.core: m for m in (
    CycleModel("cortex-m3", _table(mac=2, mul_long=4, mac_long=5),
               "Cortex-M3 TRM timings (P=2, multi-cycle multiplies at their middle)"),
    CycleModel("cortex-m4", _table(), "Cortex-M4 TRM timings (P=2, divide 7 of 2-12)"),
    CycleModel("cortex-m33", _table(), "Cortex-M4 TRM timings assumed (the M33 TRM publishes none)"),
    CycleModel("cortex-m55", _table(mve_op=2, mve_mem=2, mve_overlap=1),
               "scalar: Cortex-M4 TRM timings assumed; MVE: dual-beat, 2 cycles, 1 when overlapped"),
    CycleModel("cortex-m7", _table(load=1, store_reg=1, multi_pc=2, load_pc=2, branch=2, table_branch=3,
                                   fp_mem=1, taken=1),
               "single-issue simplification of the dual-issue M7 (branches predicted)"),
)}


def cycle_model(cpu: str) -> CycleModel | None:
    """The table of a GCC -mcpu name ("cortex-m4"), or None when we have none (then no cycle estimate)."""
    return MODELS.get(cpu.split("+")[0])
