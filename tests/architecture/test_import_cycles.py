"""No import cycle between HMS modules, read from the source (no import is executed).

The graph has an edge A → B when module A imports module B at module level (including
``try``/``if`` blocks at module level, excluding ``if TYPE_CHECKING:``). ``from pkg import
name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``. Importing a package
runs its ``__init__``, so an edge to ``pkg.mod`` also implies one to ``pkg``.

A second graph counts function-level (lazy) imports as well: a lazy import that only dodges
a cycle still couples the two modules both ways, so that graph must be acyclic too.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "hms_celery"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.append(node)
            elif isinstance(node, ast.If) and not _is_type_checking(node.test):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(tree.body)
    return found


def _all_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import in the module, function bodies included (``if TYPE_CHECKING:`` excluded)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _with_parents(name: str, modules: dict[str, Path]) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in modules]


def import_graph(*, lazy: bool = False) -> dict[str, set[str]]:
    """Each HMS module → the HMS modules it imports at module level (``lazy``: anywhere)."""
    modules = _modules()
    reader = _all_imports if lazy else _top_level_imports
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in reader(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative: from the module's package
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.append(full if full in modules else base)
            for target in targets:
                for module in _with_parents(target, modules):
                    if module != name and not name.startswith(module + "."):
                        graph[name].add(module)
    return graph


def test_the_graph_sees_known_edges() -> None:
    """The reader works: edges that exist in the source are found (else the test is vacuous)."""
    graph = import_graph()
    assert "hms_celery.verification.surface" in graph["hms_celery.verification.elaborate"]
    assert "hms_celery.verification.elaborate" in graph["hms_celery.verification.frontend"]
    assert "hms_celery.agents.registry" in graph["hms_celery.healing.supervisor"]
    assert "hms_celery.agents" in graph["hms_celery.healing.supervisor"]  # its package runs too
    assert sum(len(targets) for targets in graph.values()) > 200


def test_no_import_cycle_between_hms_modules() -> None:
    try:
        TopologicalSorter(import_graph()).prepare()
    except CycleError as exc:
        pytest.fail("import cycle: " + " → ".join(exc.args[1]))


def test_no_import_cycle_counting_lazy_imports() -> None:
    graph = import_graph(lazy=True)
    # The lazy reader sees function-level imports (else this test would add nothing).
    assert "hms_celery.verification.strategy" in graph["hms_celery.app"]
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        pytest.fail("import cycle (lazy imports counted): " + " → ".join(exc.args[1]))


def test_a_cycle_is_caught() -> None:
    """The check fails on a cycle (two modules importing each other)."""
    graph = {"a": {"b"}, "b": {"a"}}
    with pytest.raises(CycleError):
        TopologicalSorter(graph).prepare()
