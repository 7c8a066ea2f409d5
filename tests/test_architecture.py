"""The layers of docs/ARCHITECTURE.md, held: every import inside `toolchain/` (module-level or inside a
function) goes down or sideways within its layer, never along a forbidden arrow, and the subpackages
import each other without a cycle."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "toolchain"

# Lowest first. A unit is a subpackage or a top-level module of `toolchain` ("toolchain": the package's own
# __init__, i.e. __version__).
LAYERS: list[tuple[str, set[str]]] = [
    ("base", {"toolchain", "errors", "fsutil", "registry", "tools", "paths", "fields", "tf"}),
    ("domain", {"zoo", "data", "boards", "report", "recipe"}),
    ("stages", {"train", "compress", "export", "compiler", "firmware", "stackbound", "probes", "runners"}),
    ("verify", {"verify"}),
    ("orchestration", {"pipeline", "tune"}),
    ("interface", {"cli", "__main__"}),
]
RANK = {unit: i for i, (_, units) in enumerate(LAYERS) for unit in units}

# Arrows the layer order alone would allow, forbidden all the same (DESIGN.md's "Never" list; the upward
# ones it also names, e.g. compiler -> pipeline or data -> train, the order already refuses).
FORBIDDEN: dict[str, set[str]] = {
    "compiler": {"export", "train", "zoo", "compress"},
    "export": {"compiler"},
    "train": {"compiler", "export", "report"},
    "compress": {"compiler"},  # it is handed an arena estimator (and an int8 runner) instead
    "runners": {"compiler", "firmware", "stackbound"},
}


def module_name(path: Path) -> str:
    parts = ("toolchain",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imports(module: str, path: Path) -> set[str]:
    """Every `toolchain` module `module` imports, anywhere in its body."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:  # `from toolchain import zoo` imports the module toolchain.zoo
                found.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source)
    return {m for m in found if m == "toolchain" or m.startswith("toolchain.")}


def unit_graph() -> dict[str, dict[str, set[str]]]:
    """unit -> imported unit -> the modules that import it (for the failure message)."""
    graph: dict[str, dict[str, set[str]]] = {}
    for module, path in MODULES.items():
        for target in imports(module, path):
            a, b = unit(module), unit(target)
            if a != b:
                graph.setdefault(a, {}).setdefault(b, set()).add(f"{module} -> {target}")
    return graph


def test_every_module_has_a_layer():
    assert sorted({unit(m) for m in MODULES} - set(RANK)) == []


def test_imports_follow_the_layers():
    broken = []
    for a, targets in unit_graph().items():
        for b, where in targets.items():
            if RANK[b] > RANK[a]:
                broken += [f"{w} (upwards: {a} is '{LAYERS[RANK[a]][0]}', {b} is '{LAYERS[RANK[b]][0]}')"
                           for w in sorted(where)]
            elif b in FORBIDDEN.get(a, set()):
                broken += [f"{w} (forbidden: {a} -> {b})" for w in sorted(where)]
    assert broken == [], "\n".join(broken)


def test_no_package_cycle():
    graph = {a: set(targets) for a, targets in unit_graph().items()}
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [node, nxt]) if nxt in stack
                              else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, stack + [node])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert cycles == [], "\n".join(cycles)


def test_the_walker_sees_function_level_and_relative_imports(tmp_path):
    sample = PACKAGE / "verify" / "device.py"
    assert "toolchain.verify.reference" in imports("toolchain.verify.device", sample)
    lazy = PACKAGE / "pipeline" / "run.py"
    assert "toolchain.verify.int8" in imports("toolchain.pipeline.run", lazy)  # imported inside a method
