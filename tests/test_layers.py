"""Data flows one way: no module imports a higher layer, and there is no import cycle.

Every import counts — module-level, function-local and ``TYPE_CHECKING`` ones — read from
the source with ``ast`` (nothing is imported to find them). A new module must be given
its layer in ``LAYERS`` (the test names it otherwise). Modules of one layer may import
each other, as long as no cycle forms.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mcrl_kit

PACKAGE = Path(mcrl_kit.__file__).parent

#: layer of each module (longest matching prefix wins); see README "What is inside"
LAYERS = {
    # utilities: import nothing of the kit but each other
    "errors": 0, "paths": 0, "seeding": 0, "faults": 0, "storage": 0, "locks": 0, "fused": 0,
    "config": 1, "devices": 1,
    "data": 2,
    "models": 3,
    "algos": 4,
    "evaluate": 5,
    "runs": 6,
    "train": 7,
    "diagnostics": 8, "probes": 8, "report": 8, "experiments": 8, "online": 8, "evaluators": 8, "intervals": 8,
    "viz": 9,
    "tune": 9, "study": 10, "notebooks": 10, "lab": 10, "site": 10, "cli": 11, "__main__": 12, "": 12,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """The kit modules ``path`` imports (as names relative to the package), wherever the import sits."""
    name, tree = module_name(path), ast.parse(path.read_text(encoding="utf-8"))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module and node.module.split(".")[0] == "mcrl_kit":
                target = node.module.removeprefix("mcrl_kit").lstrip(".")
            else:
                continue
            for alias in node.names:  # `from . import faults` imports the module faults
                sub = f"{target}.{alias.name}".lstrip(".")
                found.add(sub if _is_module(sub) else target)
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("mcrl_kit").lstrip(".") for a in node.names if a.name.split(".")[0] == "mcrl_kit"}
    return found - {name}


def _is_module(name: str) -> bool:
    path = PACKAGE.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def layer(name: str) -> int:
    matches = [k for k in LAYERS if name == k or name.startswith(k + ".") or k == ""]
    best = max(matches, key=len)
    if best == "" and name:
        raise AssertionError(f"mcrl_kit.{name} has no layer: add it to tests/test_layers.py LAYERS")
    return LAYERS[best]


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_has_a_layer():
    for name in graph():
        layer(name)


def test_no_module_imports_a_higher_layer():
    upward = [
        f"mcrl_kit.{a} (layer {layer(a)}) imports mcrl_kit.{b} (layer {layer(b)})"
        for a, deps in graph().items() for b in sorted(deps) if layer(b) > layer(a)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycle():
    g = graph()
    # a package's __init__ is imported with each of its modules: importing `data.prepare` runs `data` first
    def deps(name: str) -> set[str]:
        out = set(g.get(name, ()))
        for d in list(out):
            parent = d.rsplit(".", 1)[0] if "." in d else None
            if parent and parent in g and parent != name and not name.startswith(parent + "."):
                out.add(parent)
        return {d for d in out if d in g}

    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(deps(node)):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt):], nxt]
                raise AssertionError("import cycle: " + " -> ".join(f"mcrl_kit.{c}".rstrip(".") for c in cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node)


def test_the_checker_sees_function_local_and_type_checking_imports(tmp_path, monkeypatch):
    """The test must be able to fail: an upward import hidden in a function or under TYPE_CHECKING is found."""
    fake = tmp_path / "mcrl_kit"
    (fake / "data").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "config.py").write_text("def f():\n    from .data.simulator import SCALES\n")
    (fake / "data" / "__init__.py").write_text("")
    (fake / "data" / "simulator.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..config import X\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert imports_of(fake / "config.py") == {"data.simulator"}
    assert imports_of(fake / "data" / "simulator.py") == {"config"}
