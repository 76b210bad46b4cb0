"""Verification is layered one way: no import cycle between its modules, *counting
function-level imports*, and no module reaches into another's private names.

Read from the source (nothing is imported).  ``if TYPE_CHECKING:`` blocks are left out: they
never run.  ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to
``pkg``; importing ``pkg.mod`` runs ``pkg/__init__`` too, but the package ``__init__`` only
re-exports, so edges to the package itself are not counted (it imports the modules it
re-exports, and every module is inside it).
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from tests.architecture.test_import_cycles import _all_imports

ROOT = Path(__file__).resolve().parents[2] / "hms_celery" / "verification"
PACKAGE = "hms_celery.verification"


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        found[".".join((PACKAGE, *parts))] = path
    return found


def _base(name: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    anchor = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join([*anchor, node.module] if node.module else anchor)


def graph_and_bindings() -> tuple[dict[str, set[str]], dict[str, dict[str, str]]]:
    """Module → verification modules it imports anywhere; module → local name → module
    (the names bound to a verification module, for the private-attribute check)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    bound: dict[str, dict[str, str]] = {name: {} for name in modules}
    for name, path in modules.items():
        for node in _all_imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [(a.name, a.asname) for a in node.names]
            else:
                base = _base(name, path, node)
                targets = []
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    if full in modules:
                        targets.append((full, alias.asname or alias.name))
                    else:
                        targets.append((base, None))
            for target, local in targets:
                if target in modules and target != PACKAGE and target != name:
                    graph[name].add(target)
                    if local:
                        bound[name][local] = target
    return graph, bound


def test_the_reader_sees_known_edges() -> None:
    """Not vacuous: edges that exist in the source are found, function-level ones too."""
    graph, _ = graph_and_bindings()
    assert f"{PACKAGE}.z3_session" in graph[f"{PACKAGE}.prover"]
    assert f"{PACKAGE}.surface" in graph[f"{PACKAGE}.elaborate"]
    assert f"{PACKAGE}.prover" in graph[f"{PACKAGE}.request"]  # a function-level import
    assert f"{PACKAGE}.all_sizes" in graph[f"{PACKAGE}.prover"]
    assert sum(len(t) for t in graph.values()) > 80


def test_no_import_cycle_in_verification_counting_lazy_imports() -> None:
    graph, _ = graph_and_bindings()
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        pytest.fail(f"import cycle in verification: {' → '.join(exc.args[1])}")
    assert len(order) == len(graph)


def test_no_module_uses_another_modules_private_names() -> None:
    modules = _modules()
    _, bound = graph_and_bindings()
    found: list[str] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in _all_imports(tree):
            if isinstance(node, ast.ImportFrom):
                base = _base(name, path, node)
                if base.startswith(PACKAGE):
                    found += [f"{name}: from {base} import {a.name}" for a in node.names
                              if a.name.startswith("_") and a.name != "__future__"]  # fmt: skip
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in bound[name]
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                found.append(f"{name}: {node.value.id}.{node.attr}")
    assert found == []
