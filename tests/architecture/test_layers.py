"""Dependencies point down: no HMS module imports a module of a layer above its own.

The layers are those of ``docs/architecture.md``, bottom first.  Imports are read from the
source, lazy (function-level) imports included, by the import-cycle test's reader.
"""

from __future__ import annotations

from tests.architecture.test_import_cycles import import_graph

#: Bottom first; a module belongs to the layer of its longest matching prefix.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("bottom", ("hms_celery.settings", "hms_celery.errors", "hms_celery.no_broker")),
    ("library", ("hms_celery.verification",)),
    ("state", ("hms_celery.store",)),
    ("decisions", ("hms_celery.policy",)),
    ("runtime", ("hms_celery.runtime", "hms_celery.app")),
    (
        "services",
        ("hms_celery.healing", "hms_celery.genetic", "hms_celery.agents", "hms_celery.metrics"),
    ),
    ("client", ("hms_celery.client",)),
    ("entry points", ("hms_celery.cli", "hms_celery.flower", "hms_celery.flowerconfig")),
]

#: The package itself exposes the Celery app (``celery -A hms_celery``): it sits on top.
ENTRY_PACKAGE = "hms_celery"


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` of ``module``'s layer (ValueError if none)."""
    if module == ENTRY_PACKAGE:
        return len(LAYERS)
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                best is None or len(prefix) > best[1]
            ):
                best = (index, len(prefix))
    if best is None:
        raise ValueError(f"{module} is in no layer: add it to LAYERS (and the diagram)")
    return best[0]


def upward_imports() -> list[str]:
    graph = import_graph(lazy=True)
    found = []
    for module, imported in sorted(graph.items()):
        for target in sorted(imported):
            if layer_of(target) > layer_of(module):
                found.append(
                    f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} "
                    f"({LAYERS[layer_of(target)][0]})"
                )
    return found


def test_every_module_is_in_a_layer() -> None:
    for module in import_graph(lazy=True):
        layer_of(module)


def test_no_module_imports_a_layer_above_its_own() -> None:
    assert upward_imports() == []


def test_the_check_sees_real_edges() -> None:
    """Known downward edges, so that the test cannot pass on an empty graph."""
    graph = import_graph(lazy=True)
    assert "hms_celery.store.repository" in graph["hms_celery.runtime.publish"]
    assert "hms_celery.runtime.skills" in graph["hms_celery.app"]
    assert layer_of("hms_celery.client.local_stack") > layer_of("hms_celery.agents.host")
