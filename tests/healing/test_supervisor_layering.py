"""The healing package depends only downward: it imports neither the GA, nor the client, nor
the CLI — not even inside a function (the GA's upkeep is its own task)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HEALING = Path(__file__).resolve().parents[2] / "hms_celery" / "healing"
FORBIDDEN = ("hms_celery.genetic", "hms_celery.client", "hms_celery.cli")


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_healing_imports_no_genetic_client_or_cli() -> None:
    modules = sorted(HEALING.glob("*.py"))
    assert {"supervisor.py", "decide.py", "observe.py", "control.py"} <= {m.name for m in modules}
    seen = {m.name: _imports(m) for m in modules}
    assert "hms_celery.agents.registry" in seen["supervisor.py"]  # the walk sees imports
    bad = {
        name: sorted(i for i in found if i.startswith(FORBIDDEN))
        for name, found in seen.items()
        if any(i.startswith(FORBIDDEN) for i in found)
    }
    assert bad == {}


def test_the_decisions_need_no_services() -> None:
    """decide.py is pure: no store, broker, Celery app or clock."""
    found = _imports(HEALING / "decide.py")
    assert not {i for i in found if i.startswith(("hms_celery.store", "hms_celery.app", "time"))}
    assert not [i for i in found if i in ("redis", "celery", "sqlalchemy", "psutil")]


def test_beat_sends_the_ga_maintenance_beside_the_sweep() -> None:
    from hms_celery.app import app
    from hms_celery.genetic.maintenance import MAINTAIN_TASK
    from hms_celery.settings import get_settings

    schedule = app.conf.beat_schedule
    sweep = next(e for e in schedule.values() if e["task"] == "hms.supervisor.sweep")
    ga = next(e for e in schedule.values() if e["task"] == MAINTAIN_TASK)
    assert ga["schedule"] == sweep["schedule"] == get_settings().sweep_interval
    assert ga["options"]["queue"] == "supervisor"  # the always-on agent
    assert MAINTAIN_TASK in app.tasks


@pytest.mark.services
def test_one_ga_maintenance_round_at_a_time(stack_env: dict[str, str]) -> None:
    from hms_celery.genetic.maintenance import LOCK_KEY, maintain_task
    from hms_celery.healing.heartbeats import redis_client
    from hms_celery.healing.supervisor import LOCK_KEY as SWEEP_LOCK

    assert LOCK_KEY != SWEEP_LOCK  # a long sweep does not hold the GA up, nor the reverse
    redis = redis_client()
    held = redis.lock(LOCK_KEY, timeout=30)
    assert held.acquire(blocking=False)
    try:
        assert maintain_task.run(reason="second beat") == {
            "skipped": "another GA maintenance round holds the lock"
        }
    finally:
        held.release()
    done = maintain_task.run(reason="alone")
    assert done["reason"] == "alone" and isinstance(done["actions"], list)
