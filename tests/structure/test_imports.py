"""The import graph of `app`, walked with `ast`: layers point down, adapters stand alone, no cycles.

Layers, top to bottom (DESIGN.md's flow, STYLE.md's "imports run down the flow"):
- entry: `app.main`, `app.deps`, `app.cli`, `app.routers`, `app.ui` (the HTTP and shell edges);
- domain: `app.sync`, `app.webhooks`, `app.pull`, `app.ops`, `app.crm`;
- runtime: `app.runtime` (the service container and the loop shape, holding providers);
- adapters: `app.providers` (and the fakes that stand in for the CRMs);
- base: everything else directly under `app` (settings, errors, db, records, models, ...).

A module may import its own layer or a lower one. Every import counts, lazy ones inside functions
too: a lazy import hides a cycle from Python, not from a reader.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"

LAYERS = {"entry": 4, "domain": 3, "runtime": 2, "adapters": 1, "base": 0}
ENTRY = ("app.main", "app.deps", "app.cli", "app.routers", "app.ui", "app.__main__")
DOMAIN = ("app.sync", "app.webhooks", "app.pull", "app.ops", "app.crm")
ADAPTER_ROOTS = ("app.fakes", "app.providers")
# One adapter never reaches into another: each is its own vendor's edge.
ADAPTERS = (
    "app.providers.mock",
    "app.providers.internal",
    "app.providers.hubspot",
    "app.providers.treadsoft",
)
# Edges that are allowed though they cross the rules, each with its reason. Keep it empty.
ALLOWED: dict[tuple[str, str], str] = {}


def _under(module: str, roots: tuple[str, ...]) -> str | None:
    return next((r for r in roots if module == r or module.startswith(r + ".")), None)


def layer(module: str) -> int:
    if _under(module, ENTRY):
        return LAYERS["entry"]
    if _under(module, DOMAIN):
        return LAYERS["domain"]
    if _under(module, ("app.runtime",)):
        return LAYERS["runtime"]
    if _under(module, ADAPTER_ROOTS):
        return LAYERS["adapters"]
    return LAYERS["base"]


def modules() -> dict[str, Path]:
    found = {}
    for path in APP.rglob("*.py"):
        parts = path.relative_to(APP.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def imports(module: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """Every `app` module this one imports, with the packages an import runs on the way."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, path, node)
            targets = [source]
            # `from app.x import y` may name a submodule y.
            targets += [f"{source}.{a.name}" for a in node.names if f"{source}.{a.name}" in known]
        for target in targets:
            parts = target.split(".")
            for n in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
                name = ".".join(parts[:n])
                if name in known and name != module and name != "app":
                    yield name


def graph() -> dict[str, set[str]]:
    known = modules()
    return {m: set(imports(m, p, known)) for m, p in known.items()}


def test_no_module_imports_upward() -> None:
    upward = sorted(
        f"{source} -> {target}"
        for source, targets in graph().items()
        for target in targets
        if layer(target) > layer(source) and (source, target) not in ALLOWED
    )
    assert upward == []


@pytest.mark.parametrize("entry", ["app.deps", "app.main", "app.cli"])
def test_only_the_edges_reach_the_entry_modules(entry: str) -> None:
    reaching = sorted(
        source
        for source, targets in graph().items()
        if any(_under(t, (entry,)) for t in targets)
        and not _under(source, ENTRY)
        and (source, entry) not in ALLOWED
    )
    assert reaching == []


def test_no_adapter_imports_another() -> None:
    crossing = sorted(
        f"{source} -> {target}"
        for source, targets in graph().items()
        if (mine := _under(source, ADAPTERS))
        for target in targets
        if (theirs := _under(target, ADAPTERS)) and theirs != mine
    )
    assert crossing == []


def test_no_import_cycles() -> None:
    edges = {m: {t for t in ts if (m, t) not in ALLOWED} for m, ts in graph().items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert [" -> ".join(c) for c in cycles] == []


def test_the_walk_sees_lazy_imports() -> None:
    """The checker itself: an import inside a function is an edge like any other."""
    assert "app.main" in graph()["app.cli.main"]  # `serve` imports the app when it runs
