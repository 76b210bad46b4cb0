"""`hms audit`: the audit log queried by subject, action and time range, as a table or JSON —
through the installed console script, on a real store (a SQLite file and PostgreSQL)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from hms_celery.cli.audit import parse_time
from hms_celery.store.db import connection_scope
from hms_celery.store.migrate import upgrade
from hms_celery.store.models import AuditEvent
from hms_celery.store.repository import audit
from tests.cli.test_usage import hms

BASE = datetime(2001, 6, 1, 10, 0, tzinfo=UTC)  # long before any other test's events
UNTIL = "2002-01-01"
LONG_REASON = "the pool did not answer the health check " * 6


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, object]:
    """A migrated store holding six old events (5 minutes apart) and one of now."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hms.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    upgrade(url)
    tag = uuid.uuid4().hex[:8]
    agent, task, other = f"agent-{tag}", f"task-{tag}", f"other-{tag}"
    events = [
        ("supervisor", "recovery.restart", agent, {"reason": LONG_REASON}),
        ("supervisor", "recovery.respawn", agent, {"config": {"concurrency": 1}}),
        ("client", "task.submitted", task, {"queue": "prove.z3"}),
        ("worker", "task.result", task, {"verdict": "PROVED"}),
        ("client", "taskforce.assembled", other, {}),
        ("supervisor", "recovery_log", agent, {}),
    ]
    with connection_scope(url) as conn:
        for i, (actor, action, subject, details) in enumerate(events):
            conn.execute(
                insert(AuditEvent.__table__).values(
                    at=BASE + timedelta(minutes=5 * i),
                    actor=actor,
                    action=action,
                    subject=subject,
                    details=details,
                )
            )
        audit(conn, "client", "task.submitted", f"recent-{tag}")  # at the store's now
    env = {
        "HMS_DATABASE_URL": url,
        "HMS_DATA_DIR": str(tmp_path),
        "HMS_BROKER_URL": "redis://127.0.0.1:1/0",  # never asked: the audit log is in the store
    }
    return {"env": env, "agent": agent, "task": task, "recent": f"recent-{tag}"}


def _actions(store: dict[str, object], *args: str) -> list[str]:
    done = hms("audit", *args, "--json", env=store["env"])  # type: ignore[arg-type]
    assert done.returncode == 0, done.stderr
    events = json.loads(done.stdout)
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)  # oldest first
    return [e["action"] for e in events]


ALL_OLD = [
    "recovery.restart", "recovery.respawn", "task.submitted", "task.result",
    "taskforce.assembled", "recovery_log",
]  # fmt: skip


def test_filters_by_action_subject_and_time(store: dict[str, object]) -> None:
    assert _actions(store, "--until", UNTIL) == ALL_OLD
    # an action matches itself and its sub-actions; 'recovery.' / 'recovery*' are prefixes
    assert _actions(store, "--until", UNTIL, "-a", "task") == ["task.submitted", "task.result"]
    assert _actions(store, "--until", UNTIL, "--action", "task.result") == ["task.result"]
    assert _actions(store, "--until", UNTIL, "--action", "recovery.") == ALL_OLD[:2]
    assert _actions(store, "--until", UNTIL, "-a", "recovery*") == [*ALL_OLD[:2], "recovery_log"]
    assert _actions(store, "--subject", str(store["agent"])) == [*ALL_OLD[:2], "recovery_log"]
    assert _actions(store, "-s", str(store["task"]), "-a", "task.submitted") == ["task.submitted"]
    # a range: since inclusive, until exclusive; zones are converted (12:05+02:00 = 10:05Z)
    in_range = _actions(store, "--since", "2001-06-01T10:05:00Z", "--until", "2001-06-01 10:20")
    assert in_range == ALL_OLD[1:4]
    assert _actions(store, "--since", "2001-06-01T12:05:00+02:00", "--until", UNTIL) == ALL_OLD[1:]
    # the newest N, shown oldest first
    assert _actions(store, "--until", UNTIL, "--limit", "2") == ALL_OLD[4:]
    # relative times: the recent event is within the last 10 minutes, not before them
    recent = str(store["recent"])
    assert _actions(store, "--since", "10m", "--subject", recent) == ["task.submitted"]
    assert _actions(store, "--until", "10m", "--subject", recent) == []
    assert _actions(store, "--since", "1d", "-s", str(store["agent"])) == []


def test_table_shows_every_event_whole(store: dict[str, object]) -> None:
    done = hms("audit", "--subject", str(store["agent"]), env=store["env"])  # type: ignore[arg-type]
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stdout.splitlines() if "recovery" in ln]
    assert len(lines) == 3, done.stdout
    assert f"reason={LONG_REASON}" in lines[0]
    assert str(store["agent"]) in lines[0] and "2001-06-01 10:00:00.000" in lines[0]
    assert 'config={"concurrency": 1}' in lines[1]
    assert "3 audit events" in done.stdout


@pytest.mark.parametrize(
    "argv,option",
    [
        (["--since", "yesterday"], "'--since'"),
        (["--until", "5x"], "'--until'"),
        (["--since", "2001-13-01"], "'--since'"),
        (["--since", "2h", "--until", "3h"], "'--since'"),
        (["--limit", "-3"], "'--limit'"),
    ],
)
def test_a_bad_option_is_exit_2_naming_it(argv: list[str], option: str, tmp_path: Path) -> None:
    done = hms("audit", *argv, env={"HMS_DATA_DIR": str(tmp_path)})
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"Invalid value for {option}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_parse_time() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert parse_time("10m", now=now) == now - timedelta(minutes=10)
    assert parse_time("2h", now=now) == now - timedelta(hours=2)
    assert parse_time("1d", now=now) == now - timedelta(days=1)
    assert parse_time("90s", now=now) == now - timedelta(seconds=90)
    assert parse_time("1W", now=now) == now - timedelta(weeks=1)
    assert parse_time("2026-12-01") == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_time("2026-12-01T13:00:00+01:00") == datetime(2026, 12, 1, 12, tzinfo=UTC)
    for bad in ("", "m", "10 minutes", "-5m", "2026-02-30", "99999999999w"):
        with pytest.raises(ValueError):
            parse_time(bad, now=now)
