"""The static worst-case stack of a firmware image: GCC's per-function stack use over the linked image's call graph.

Where the numbers come from:
- `.ci` (GCC `-fcallgraph-info=su`, VCG) beside each object file: every compiled function's frame in bytes with its
  qualifier (static, dynamic, dynamic,bounded), its calls and its indirect-call sites. Where an object has no
  `.ci`, its `.su` (`-fstack-usage`) gives the frames.
- the linked ELF, disassembled (`arm-none-eabi-objdump -d`): every call and tail call the image really makes. The
  `.ci` misses the calls the compiler inserts itself (`__aeabi_uldivmod`, `memcpy` for a struct copy) and knows
  nothing of library code; library functions (newlib, libgcc) get their frames from their code: every push and
  sp decrement added up, which bounds any path through them.
- the linker map: which object file each function comes from (two files may each have a static `foo`).

What the bound assumes (each also named where it is applied):
- an indirect call reaches only a function whose address the image takes: one a relocation stores as a word (in a
  literal pool, a table, .init_array) or builds in a movw/movt pair; the link keeps the relocations in the ELF
  (--emit-relocs). Every such function is a candidate at every indirect call site; without relocations an indirect
  call makes the bound unknown;
- one exception at a time on the thread's stack: every configurable exception keeps the reset priority 0 (the
  firmware never writes SHPR or NVIC_IPR), so none preempts another; faults (which can preempt) report and end the
  program on a stack of their own (`OWN_STACK`), and are reported even when their frame does not fit (fault.c);
- the frame the core pushes on exception entry: 8 words, or 26 with an FP context (S0-S15, FPSCR and a reserved
  word, VPR on Armv8.1-M; with lazy stacking the space is reserved whenever the thread has used FP/MVE registers),
  plus 4 bytes to align it to 8. No Secure -> Non-secure state context: the firmware runs Secure only;
- GCC's frame of a compiled function is exact; inline assembly that moves sp is not seen (the firmware's only such
  code is listed in `OWN_STACK`).
Recursion, a frame that grows at run time (alloca, a variable-length array, sp loaded from a register) and a jump
that cannot be followed make the bound unknown; the reasons name the functions.
"""
from __future__ import annotations

import bisect
import json
import re
import struct
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from toolchain.errors import ToolchainError
from toolchain.fsutil import write_json
from toolchain.tools import ARM_GCC_HINT, require_tool

BOUND_FILE = "stack_bound.json"
MODEL_ENTRY = "tm_model_run"
BASIC_FRAME, FP_FRAME, FRAME_ALIGN = 32, 104, 4  # exception frame bytes: 8 words, 26 words; alignment padding
# Functions that move sp to a stack of their own before calling on: what they call uses none of the thread's stack.
OWN_STACK = {"tm_fault_entry": "fault.c: the fault report runs on tm_fault_stack, so that an overflow is reported"}


def exception_frame(fp_context: bool) -> int:
    """Bytes the core pushes on exception entry at worst: with an FP context when the core has FP/MVE registers."""
    return (FP_FRAME if fp_context else BASIC_FRAME) + FRAME_ALIGN


# -- GCC's figures -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Function:
    """One function of a call graph: its own frame in bytes, its direct callees (graph keys) and the sites of its
    indirect calls."""
    name: str
    frame: int
    dynamic: bool = False  # the frame grows at run time without a bound
    calls: tuple[str, ...] = ()
    indirect: tuple[str, ...] = ()


_CI_NODE = re.compile(r'^node: \{ title: "([^"]*)" label: "([^"]*)"')
_CI_EDGE = re.compile(r'^edge: \{ sourcename: "([^"]*)" targetname: "([^"]*)"(?: label: "([^"]*)")?')
_CI_FRAME = re.compile(r"(\d+) bytes \(([a-z,]+)\)")
_SU_LINE = re.compile(r"^(.*):(\d+):(\d+):(.+)\t(\d+)\t(\S+)$")
INDIRECT_NODE = "__indirect_call"


def _frame(size: str, qualifier: str) -> tuple[int, bool]:
    """GCC's bytes and whether they are no bound: "dynamic" alone grows without one, "dynamic,bounded" does not."""
    return int(size), qualifier.split(",") == ["dynamic"]


def parse_ci(text: str) -> dict[str, Function]:
    """The functions one `.ci` file defines, by node title (the name; "file:name" for a static function)."""
    defined: dict[str, Function] = {}
    calls: dict[str, list[str]] = {}
    sites: dict[str, list[str]] = {}
    for line in text.splitlines():
        if node := _CI_NODE.match(line):
            label = node.group(2).split("\\n")
            if frame := _CI_FRAME.search(label[-1]):
                defined[node.group(1)] = Function(label[0], *_frame(*frame.groups()))
        elif edge := _CI_EDGE.match(line):
            source, target, where = edge.groups()
            if target == INDIRECT_NODE:
                sites.setdefault(source, []).append(where or "?")
            else:
                calls.setdefault(source, []).append(target)
    return {title: Function(f.name, f.frame, f.dynamic, tuple(dict.fromkeys(calls.get(title, ()))),
                            tuple(dict.fromkeys(sites.get(title, ())))) for title, f in defined.items()}


def parse_su(text: str) -> dict[str, Function]:
    """The frames one `.su` file lists, by function name (no calls: a `.su` has none)."""
    found = {}
    for line in text.splitlines():
        if m := _SU_LINE.match(line):
            found[m.group(4)] = Function(m.group(4), *_frame(m.group(5), m.group(6)))
    return found


def ci_graph(texts: Iterable[str]) -> dict[str, Function]:
    """The call graph of several `.ci` files together (a call to another file's function links by its name)."""
    graph: dict[str, Function] = {}
    for text in texts:
        graph.update(parse_ci(text))
    return graph


# -- the worst path ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Depth:
    """The deepest stack below an entry: bytes (None: unknown, `unknown` says why) along `path` (function names)."""
    bytes: int | None
    path: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"bytes": self.bytes, "path": list(self.path), "unknown": list(self.unknown)}

    @classmethod
    def from_dict(cls, d: dict) -> Depth:
        return cls(d["bytes"], tuple(d["path"]), tuple(d["unknown"]))


def worst_depth(graph: dict[str, Function], entry: str, indirect_targets: tuple[str, ...] | None = None) -> Depth:
    """The deepest stack from `entry` over `graph`. `indirect_targets`: the graph keys an indirect call may reach
    (None: not known, and an indirect call makes the depth unknown)."""
    done: dict[str, Depth] = {}

    def visit(key: str, chain: tuple[str, ...]) -> Depth:
        if key in chain:
            cycle = " -> ".join(graph[k].name for k in chain[chain.index(key):] + (key,))
            return Depth(None, (), (f"recursion: {cycle}",))
        if key in done:
            return done[key]
        f = graph.get(key)
        if f is None:
            return Depth(None, (key,), (f"no stack figure for {key} (no .ci/.su and not in the image)",))
        problems = [f"{f.name} allocates stack at run time (alloca, a variable-length array or sp from a register)"
                    ] if f.dynamic else []
        callees = list(f.calls)
        if f.indirect and indirect_targets is None:
            problems.append(f"{f.name} calls through a function pointer ({', '.join(f.indirect)})")
        elif f.indirect:
            callees += indirect_targets
        deepest = Depth(0)
        for callee in dict.fromkeys(callees):
            below = visit(callee, chain + (key,))
            problems += below.unknown
            if below.bytes is not None and below.bytes > deepest.bytes:
                deepest = below
        problems = list(dict.fromkeys(problems))
        done[key] = Depth(None if problems else f.frame + deepest.bytes, (f.name,) + deepest.path, tuple(problems))
        return done[key]

    return visit(entry, ())


# -- the bound of an image -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class StackBound:
    """The static worst-case stack of an image: the thread (from the reset vector: start-up, the harness, the
    model) plus the deepest exception on top of it (its frame and handler), and `tm_model_run` alone."""
    thread: Depth
    exception: Depth
    model_run: Depth | None
    indirect_targets: tuple[str, ...] = ()

    @property
    def bytes(self) -> int | None:
        known = self.thread.bytes is not None and self.exception.bytes is not None
        return self.thread.bytes + self.exception.bytes if known else None

    @property
    def unknown(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.thread.unknown + self.exception.unknown))

    def describe(self) -> str:
        """One line: the bound and its parts, or why it is unknown."""
        if self.bytes is None:
            return "unknown: " + "; ".join(self.unknown)
        model = "" if self.model_run is None or self.model_run.bytes is None else \
            f"; {MODEL_ENTRY} alone {self.model_run.bytes:,} B"
        return (f"{self.bytes:,} B = thread {self.thread.bytes:,} ({' > '.join(self.thread.path)}) + exception "
                f"{self.exception.bytes:,} ({' > '.join(self.exception.path)}){model}")

    def to_dict(self) -> dict:
        return {"bytes": self.bytes, "thread": self.thread.to_dict(), "exception": self.exception.to_dict(),
                "model_run": None if self.model_run is None else self.model_run.to_dict(),
                "indirect_targets": list(self.indirect_targets)}

    @classmethod
    def from_dict(cls, d: dict) -> StackBound:
        return cls(Depth.from_dict(d["thread"]), Depth.from_dict(d["exception"]),
                   None if d["model_run"] is None else Depth.from_dict(d["model_run"]), tuple(d["indirect_targets"]))

    def save(self, directory: Path) -> None:
        write_json(Path(directory) / BOUND_FILE, self.to_dict())

    @classmethod
    def load(cls, directory: Path) -> StackBound | None:
        """The bound a build wrote into `directory`; None if it wrote none."""
        path = Path(directory) / BOUND_FILE
        return cls.from_dict(json.loads(path.read_text())) if path.is_file() else None


def image_bound(build_dir: Path, *, fp_context: bool) -> StackBound:
    """The bound of `build_dir`/firmware.elf (with firmware.map and the objects' .ci/.su beside it)."""
    build_dir = Path(build_dir)
    elf = _Elf.read(build_dir / "firmware.elf")
    code = _disassemble(build_dir / "firmware.elf", elf)
    graph = _image_graph(build_dir, elf, code)
    taken = elf.address_taken(code.movt_values)
    targets = None if taken is None else tuple(sorted(code.key[a] for a in taken))
    vectors = elf.vectors()
    thread = worst_depth(graph, code.key[vectors[1]], targets)
    frame = exception_frame(fp_context)
    handlers = [worst_depth(graph, code.key[a], targets) for a in dict.fromkeys(vectors[2:]) if a in code.key]
    # Of equally deep handlers the one first in the table later is named: SysTick's (15), not the faults' (from 2).
    deepest = max(reversed(handlers), key=lambda d: -1 if d.bytes is None else d.bytes, default=Depth(0))
    problems = tuple(p for d in handlers for p in d.unknown)
    exception = Depth(None if problems else frame + deepest.bytes, (f"frame {frame}",) + deepest.path, problems)
    model = worst_depth(graph, MODEL_ENTRY, targets) if MODEL_ENTRY in graph else None
    return StackBound(thread, exception, model, tuple(graph[t].name for t in targets or ()))


# -- the linked image ----------------------------------------------------------------------------------------

_SHT_SYMTAB, _SHT_NOBITS, _SHT_REL, _SHF_ALLOC, _STT_FUNC = 2, 8, 9, 0x2, 2
# Relocations that store an address as data (R_ARM_ABS32, R_ARM_TARGET1: .init_array) or build it in a movw/movt
# pair (R_ARM_MOVT_ABS, R_ARM_THM_MOVT_ABS); calls and branches (R_ARM_THM_CALL, ...) take no address.
_WORD_RELOCS, _MOVT_RELOCS = {2, 38}, {44, 48}
_NOT_POINTERS = (".vectors", ".ARM.exidx")  # the handlers (analysed as entries) and unwind tables


@dataclass(frozen=True)
class _Section:
    name: str
    type: int
    flags: int
    addr: int
    data: bytes
    info: int  # a relocation section: the index of the section it relocates


@dataclass(frozen=True)
class _Elf:
    """What the bound needs of a 32-bit little-endian ELF: its sections, function symbols and relocations (kept by
    the link's --emit-relocs)."""
    sections: tuple[_Section, ...]
    functions: dict[int, tuple[str, int]]  # start address (Thumb bit clear) -> (name, size)

    @classmethod
    def read(cls, path: Path) -> _Elf:
        data = Path(path).read_bytes()
        if data[:4] != b"\x7fELF" or data[4:6] != b"\x01\x01":
            raise ToolchainError(f"{path} is not a 32-bit little-endian ELF", "rebuild the firmware")
        shoff, = struct.unpack_from("<I", data, 0x20)
        entsize, count, names = struct.unpack_from("<HHH", data, 0x2E)
        headers = [struct.unpack_from("<10I", data, shoff + i * entsize) for i in range(count)]

        def text(table: int, offset: int) -> str:
            start = headers[table][4] + offset
            return data[start:data.index(b"\0", start)].decode(errors="replace")

        sections = tuple(_Section(text(names, h[0]), h[1], h[2], h[3],
                                  b"" if h[1] == _SHT_NOBITS else data[h[4]:h[4] + h[5]], h[7]) for h in headers)
        functions: dict[int, tuple[str, int, int]] = {}
        for h in (h for h in headers if h[1] == _SHT_SYMTAB):
            for off in range(h[4], h[4] + h[5], 16):
                name, value, size, info, _, _ = struct.unpack_from("<IIIBBH", data, off)
                rank = {1: 0, 2: 1}.get(info >> 4, 2)  # an alias is named by its global, else weak, else local symbol
                if info & 0xF == _STT_FUNC and rank < functions.get(value & ~1, ("", 0, 3))[2]:
                    functions[value & ~1] = (text(h[6], name), size, rank)
        return cls(sections, {a: (n, s) for a, (n, s, _) in functions.items()})

    def section(self, name: str) -> _Section:
        found = [s for s in self.sections if s.name == name]
        if not found:
            raise ToolchainError(f"the firmware image has no {name} section", "rebuild it with the repository's "
                                 "CMakeLists.txt (firmware/runtime/sections.ld)")
        return found[0]

    def word(self, address: int) -> int | None:
        for s in self.sections:
            if s.flags & _SHF_ALLOC and s.addr <= address <= s.addr + len(s.data) - 4:
                return struct.unpack_from("<I", s.data, address - s.addr)[0]
        return None

    def vectors(self) -> list[int]:
        """The vector table's entries (Thumb bit clear): [0] the initial sp, [1] reset, then the handlers."""
        table = self.section(".vectors").data
        return [w & ~1 for w in struct.unpack_from(f"<{len(table) // 4}I", table) if w]

    def pointer_sites(self) -> tuple[set[int], set[int]] | None:
        """Where the loaded image holds an address: the words (R_ARM_ABS32 and R_ARM_TARGET1) and the movt
        instructions (of movw/movt pairs) that relocations fill in; None when the image kept no relocations."""
        words, movts, relocated = set(), set(), False
        for rel in (s for s in self.sections if s.type == _SHT_REL):
            target = self.sections[rel.info]
            relocated |= bool(target.flags & _SHF_ALLOC)
            if not target.flags & _SHF_ALLOC or target.name.startswith(_NOT_POINTERS):
                continue
            for offset, info in struct.iter_unpack("<II", rel.data):
                (words if info & 0xFF in _WORD_RELOCS else movts if info & 0xFF in _MOVT_RELOCS else set()).add(offset)
        return (words, movts) if relocated else None

    def address_taken(self, movt_values: dict[int, int]) -> set[int] | None:
        """The starts of the functions whose address the image stores or builds (None: no relocations to tell)."""
        sites = self.pointer_sites()
        if sites is None:
            return None
        values = {self.word(a) for a in sites[0]} | {movt_values.get(a) for a in sites[1]}
        return {v & ~1 for v in values if v is not None and v & 1} & set(self.functions)


@dataclass
class _Code:
    """The disassembly, per function start address."""
    key: dict[int, str]                      # start -> graph key
    calls: dict[int, set[int]]               # start -> starts of the functions it calls or tail-calls
    indirect: dict[int, list[str]]           # start -> addresses of its indirect calls and jumps
    pushed: dict[int, int]                   # start -> bytes its pushes and sp decrements add up to
    moves_sp: dict[int, bool]                # start -> sets sp from a register (or some other unbounded way)
    movt_values: dict[int, int]              # address of a movt -> the 32-bit value of its movw/movt pair
    strays: dict[int, list[str]]             # start -> targets of its branches into no function


_INSN = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")
_TARGET = re.compile(r"\b([0-9a-f]+) <[^>]+>")
_BRANCHES = ("b", "cbz", "cbnz", "le", "letp", "wls", "wlstp")
_CONDITIONS = {"eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le", "al"}
# Mnemonics whose conditional form (a branch, or inside an IT block: "bleq", "bxne", "popeq") matters here.
_CONDITIONAL = {"b", "bl", "blx", "bx", "pop", "push", "vpop", "vpush", "ldr", "ldm", "ldmia", "mov", "add", "sub",
                "str", "strd", "stmdb", "vstmdb"}
_COMPARES = ("cmp", "cmn", "tst", "teq")  # read sp, never write it
_REG_BYTES = {"r": 4, "s": 4, "d": 8, "q": 16, "l": 4, "p": 4, "i": 4, "f": 4}  # r0-r12, sp, lr, pc, ip, fp...


def _list_bytes(operands: str) -> int:
    """Bytes of a register list such as {r4, r5, lr} or {d8-d15}."""
    total = 0
    for item in operands[operands.index("{") + 1:operands.index("}")].split(","):
        first, _, last = item.strip().partition("-")
        count = int(last[1:]) - int(first[1:]) + 1 if last else 1
        total += count * _REG_BYTES.get(first[0], 4)
    return total


def _unconditional(op: str) -> str:
    """The mnemonic without its condition ("bleq" -> "bl", "ble" -> "b") or .n/.w width ("b.w" -> "b")."""
    op = op.split(".")[0]
    return op[:-2] if op[-2:] in _CONDITIONS and op[:-2] in _CONDITIONAL else op


def stack_effect(op: str, operands: str) -> int | None:
    """Bytes an instruction allocates on the stack (0 for none or a release); None: sp changes by an unbounded or
    unknown amount."""
    op, first = _unconditional(op), operands.split(",")[0].strip()
    if op in ("push", "vpush") or op in ("stmdb", "stmfd", "vstmdb") and first == "sp!":
        return _list_bytes(operands)
    if pre := re.search(r"\[sp, #-(\d+)\]!", operands):
        return int(pre.group(1)) if op.startswith(("str", "vstr")) else None
    if first not in ("sp", "sp!", "msp", "psp") or op in ("pop", "vpop", *_COMPARES) \
            or op.startswith(("ldm", "vldm", "str")):
        return 0
    imm = re.search(r"#(\d+)", operands)
    if op in ("sub", "subs", "subw") and imm:
        return int(imm.group(1))
    return 0 if op in ("add", "adds", "addw") and imm else None


def jump_kind(op: str, operands: str) -> str | None:
    """"call"/"branch" with a target, "indirect", "return", or None for an instruction that does not leave."""
    op, first = _unconditional(op), operands.split(",")[0].strip()
    target = _TARGET.search(operands)
    if op in ("bl", "blx") and target:
        return "call"
    if op in _BRANCHES and target:
        return "branch"
    if op in ("blx", "blxns") or op in ("bx", "bxns") and first != "lr":
        return "indirect"
    if op in ("pop", "ldm", "ldmia", "ldmfd") and "pc" in operands:
        return "return" if op == "pop" or first == "sp!" else "indirect"
    if first == "pc" and not op.startswith(("tbb", "tbh")):
        if op.startswith("ldr") and "[sp" in operands:
            return "return"
        return None if "[pc" in operands else "indirect"
    return None


def _disassemble(elf_path: Path, elf: _Elf) -> _Code:
    objdump = require_tool("arm-none-eabi-objdump", ARM_GCC_HINT)
    proc = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(elf_path)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"arm-none-eabi-objdump could not read {elf_path}: {proc.stderr.strip()[-300:]}")
    starts = sorted(elf.functions)
    # A hand-written assembly function without .size (libgcc's __aeabi_uldivmod) reaches to the next function: its
    # internal branches are not calls to unknown code.
    ends = [s + elf.functions[s][1] if elf.functions[s][1] else (starts[i + 1] if i + 1 < len(starts) else s + 2)
            for i, s in enumerate(starts)]

    def owner(address: int) -> int | None:
        i = bisect.bisect_right(starts, address) - 1
        return starts[i] if i >= 0 and address < ends[i] else None

    names = Counter(n for n, _ in elf.functions.values())
    code = _Code({s: (n if names[n] == 1 else f"{n}@{s:#x}") for s, (n, _) in elf.functions.items()},
                 {s: set() for s in starts}, {s: [] for s in starts}, dict.fromkeys(starts, 0),
                 dict.fromkeys(starts, False), {}, {s: [] for s in starts})
    movw: dict[str, int] = {}
    for line in proc.stdout.splitlines():
        if not (m := _INSN.match(line)) or (fn := owner(int(m.group(1), 16))) is None:
            continue
        address, op, operands = int(m.group(1), 16), m.group(2).lower(), m.group(3).split("@")[0]
        _pair_movw_movt(address, op, operands, movw, code.movt_values)
        effect = stack_effect(op, operands)
        code.pushed[fn] += effect or 0
        code.moves_sp[fn] |= effect is None
        kind = jump_kind(op, operands)
        if kind == "indirect":
            code.indirect[fn].append(f"{address:#x}")
        elif kind in ("call", "branch"):
            target = int(_TARGET.search(operands).group(1), 16)
            callee = owner(target)
            if callee is None:
                code.strays[fn].append(f"{target:#x}")
            elif callee != fn or (kind == "call" and target == fn):
                code.calls[fn].add(callee)
    return code


def _pair_movw_movt(address: int, op: str, operands: str, movw: dict[str, int], values: dict[int, int]) -> None:
    """Record the value a movt completes with the last movw into the same register."""
    if op in ("movw", "movt") and (imm := re.match(r"\s*(\w+), #(\d+)", operands)):
        reg, imm16 = imm.group(1), int(imm.group(2))
        if op == "movw":
            movw[reg] = imm16
        elif reg in movw:
            values[address] = (imm16 << 16) | movw.pop(reg)


def _image_graph(build_dir: Path, elf: _Elf, code: _Code) -> dict[str, Function]:
    """The image's call graph by key: GCC's frames, the union of its .ci calls and the disassembly's, the library
    code's frames from its pushes."""
    figures = _GccFigures(build_dir)
    objects = _objects_by_function(build_dir / "firmware.map", elf)
    graph: dict[str, Function] = {}
    titles: dict[str, str] = {}  # .ci title -> key
    gcc: dict[int, Function] = {}
    for start, (name, _) in elf.functions.items():
        title, figure = figures.of(objects.get(start), name)
        if figure is not None:
            gcc[start] = figure
            titles[title] = code.key[start]
    for start, (name, _) in elf.functions.items():
        key, figure = code.key[start], gcc.get(start)
        calls = {code.key[c] for c in code.calls[start]} | set(code.strays[start])
        sites = list(code.indirect[start])
        if figure is not None:
            calls |= {titles[t] for t in figure.calls if t in titles}
            sites = list(figure.indirect) or sites
        frame, dynamic = (figure.frame, figure.dynamic) if figure else (code.pushed[start], code.moves_sp[start])
        if name in OWN_STACK:
            calls, sites = set(), []
        graph[key] = Function(name if key == name else key, frame, dynamic, tuple(sorted(calls)), tuple(sites))
    return graph


class _GccFigures:
    """GCC's figures per object file of the link: the functions its .ci defines (by name: .ci title and Function),
    else the frames its .su lists; an archive member's by its file name anywhere in the build directory."""

    def __init__(self, build_dir: Path):
        self.build_dir = build_dir
        self.cache: dict[str, dict[str, tuple[str, Function]]] = {}
        self.by_name: dict[str, list[Path]] = {}
        for path in (*build_dir.rglob("*.ci"), *build_dir.rglob("*.su")):
            self.by_name.setdefault(path.name, []).append(path)

    def of(self, obj: str | None, name: str) -> tuple[str, Function | None]:
        if obj is None:
            return name, None
        if obj not in self.cache:
            self.cache[obj] = self._read(obj)
        return self.cache[obj].get(name, (name, None))

    def _beside(self, obj: str, suffix: str) -> Path | None:
        member = re.fullmatch(r".*\.a\((.+)\)", obj)
        if member is None:
            path = (self.build_dir / obj).with_suffix(suffix)
            return path if path.is_file() else None
        found = self.by_name.get(Path(member.group(1)).with_suffix(suffix).name, [])
        return found[0] if len(found) == 1 else None  # two of the same name: use the code's own pushes

    def _read(self, obj: str) -> dict[str, tuple[str, Function]]:
        if ci := self._beside(obj, ".ci"):  # by the title's symbol: a clone is labelled "f.constprop", named ".0"
            functions = parse_ci(ci.read_text(errors="replace"))
            return {title.rsplit(":", 1)[-1]: (title, f) for title, f in functions.items()}
        if su := self._beside(obj, ".su"):
            return {name: (name, f) for name, f in parse_su(su.read_text(errors="replace")).items()}
        return {}


_MAP_LINE = re.compile(r"^\s+(\S+)?\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(\S+)\s*$")


def linker_map_sections(map_file: Path) -> Iterator[tuple[str, int, int, str]]:
    """Every input section of a GNU ld map's memory map: (section, address, size, object file)."""
    pending, in_map = None, False
    for line in Path(map_file).read_text(errors="replace").splitlines():
        in_map = in_map or line.startswith("Linker script and memory map")
        if not in_map or line.startswith(("LOAD ", "OUTPUT(")):
            continue
        m = _MAP_LINE.match(line)
        if m is None:
            stripped = line.strip()
            pending = stripped if stripped.startswith(".") and " " not in stripped else None
            continue
        yield m.group(1) or pending or "", int(m.group(2), 16), int(m.group(3), 16), m.group(4)
        pending = None


def _objects_by_function(map_file: Path, elf: _Elf) -> dict[int, str]:
    """Per function start, the object file whose code holds it."""
    spans = sorted((addr, addr + size, obj) for section, addr, size, obj in linker_map_sections(map_file)
                   if size and section.startswith(".text"))
    starts = [s for s, _, _ in spans]
    found = {}
    for address in elf.functions:
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0 and address < spans[i][1]:
            found[address] = spans[i][2]
    return found


def read_elf(path: Path) -> _Elf:
    """A firmware ELF's sections and function symbols (e.g. `.vectors` for the boot words)."""
    return _Elf.read(path)
