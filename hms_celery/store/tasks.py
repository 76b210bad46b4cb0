"""Task rows: record submissions (before publishing), mark them, and read their status."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, case, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Row

from hms_celery.store.audit import audit
from hms_celery.store.db import connection_scope, session_scope, statement_scope
from hms_celery.store.models import Attempt, ProofResult, Task, TaskStatus, utcnow
from hms_celery.store.race_view import race_view
from hms_celery.store.records import AttemptView, TaskStatusView, iso

# Declarative `__table__` is typed as FromClause; for this model it is a Table.
_TASKS = cast(Table, Task.__table__)
_ATTEMPTS = cast(Table, Attempt.__table__)
_RESULTS = cast(Table, ProofResult.__table__)


# Prebuilt (SQLite, PostgreSQL): building an INSERT per call costs more than sending it.
_INSERT = (sqlite_insert(_TASKS), pg_insert(_TASKS))
_INSERT_IF_ABSENT = tuple(stmt.on_conflict_do_nothing() for stmt in _INSERT)


def record_submission(
    task_id: str,
    *,
    queue: str,
    payload: dict[str, Any],
    theorem_id: str | None,
    family: str | None,
    actor: str,
    kind: str = "proof",
) -> None:
    """Record a task before it is published, so it can never be lost once accepted.

    (Routine submissions, starts and commits live in ``tasks``/``attempts``; the audit log
    keeps what deserves attention: rejections, failures, duplicates, recoveries.)
    """
    record_submissions(
        [
            {
                "id": task_id,
                "kind": kind,
                "queue": queue,
                "payload": payload,
                "theorem_id": theorem_id,
                "family": family,
            }
        ]
    )


def record_submissions(rows: Sequence[dict[str, Any]], *, if_absent: bool = False) -> None:
    """Record several tasks (``tasks`` rows: id, kind, queue, payload, theorem_id, family)
    as PENDING in one statement.  ``if_absent``: a task id already recorded is left as it is
    (ids derived from content are recorded once, however often a step is retried)."""
    if not rows:
        return
    now = utcnow()
    values = [
        {"status": TaskStatus.PENDING, "created_at": now, "updated_at": now, **row} for row in rows
    ]
    with statement_scope() as conn:  # one statement: atomic without BEGIN/COMMIT
        insert_ = _INSERT_IF_ABSENT if if_absent else _INSERT
        # A list of rows: SQLAlchemy sends them as one multi-row INSERT ("insertmanyvalues").
        conn.execute(insert_[conn.dialect.name == "postgresql"], values)


def mark_rejected(task_id: str, error: str, actor: str) -> None:
    """The broker refused the task: it was never accepted."""
    with connection_scope() as conn:
        conn.execute(
            update(_TASKS)
            .where(_TASKS.c.id == task_id)
            .values(status=TaskStatus.REJECTED, error=error, finished_at=utcnow())
        )
        audit(conn, actor, "task.rejected", task_id, error=error)


def mark_running(conn: Connection, task_id: str, now: datetime, *columns: Any) -> Row | None:
    """Mark ``task_id`` RUNNING unless it is final, and return its ``columns`` (None: no such
    task).  Updating the row first also locks it (PostgreSQL) for the rest of the
    transaction, so concurrent attempts of one task are serialised."""
    return conn.execute(
        update(_TASKS)
        .where(_TASKS.c.id == task_id)
        .values(
            status=case(
                (_TASKS.c.status.in_(TaskStatus.FINAL), _TASKS.c.status),
                else_=TaskStatus.RUNNING,
            ),
            updated_at=now,
        )
        .returning(*columns)
    ).first()


def task_status(task_id: str) -> TaskStatusView | None:
    """Everything the store knows about a task, as JSON-ready data (None if unknown)."""
    return task_statuses([task_id]).get(task_id)


def task_statuses(task_ids: Sequence[str]) -> dict[str, TaskStatusView]:
    """:func:`task_status` of many tasks in three queries (unknown ids are left out).

    Core rows, not ORM objects: a client waiting for a catalogue loads every status once,
    and building mapped objects cost it more than the queries."""
    if not task_ids:
        return {}
    with connection_scope() as conn:  # one transaction: the three reads agree
        tasks = conn.execute(select(_TASKS).where(_TASKS.c.id.in_(list(task_ids)))).all()
        found = [t.id for t in tasks]
        attempts: dict[str, list[Row]] = defaultdict(list)
        for a in conn.execute(
            select(_ATTEMPTS)
            .where(_ATTEMPTS.c.task_id.in_(found))
            .order_by(_ATTEMPTS.c.task_id, _ATTEMPTS.c.number)
        ):
            attempts[a.task_id].append(a)
        results = {
            r.task_id: r
            for r in conn.execute(select(_RESULTS).where(_RESULTS.c.task_id.in_(found)))
        }
    return {t.id: _status_json(t, attempts[t.id], results.get(t.id)) for t in tasks}


def known_tasks(task_ids: Sequence[str]) -> set[str]:
    """The ids among ``task_ids`` that the store has a task of (one cheap query)."""
    if not task_ids:
        return set()
    with session_scope() as session:
        return set(session.scalars(select(Task.id).where(Task.id.in_(list(task_ids)))))


def unfinished(task_ids: Sequence[str]) -> set[str]:
    """The ids among ``task_ids`` whose task is not in a final state (one cheap query)."""
    if not task_ids:
        return set()
    with session_scope() as session:
        return set(
            session.scalars(
                select(Task.id).where(
                    Task.id.in_(list(task_ids)), Task.status.not_in(TaskStatus.FINAL)
                )
            )
        )


def _status_json(task: Row, task_attempts: list[Row], result: Row | None) -> TaskStatusView:
    attempts: list[AttemptView] = [
        {
            "number": a.number,
            "agent": a.agent,
            "pid": a.pid,
            "started_at": iso(a.started_at),
            "ended_at": iso(a.ended_at),
            "outcome": a.outcome,
            "error": a.error,
            "leg": a.leg,
        }
        for a in task_attempts
    ]
    race = None
    if isinstance(task.payload, dict) and task.payload.get("race"):  # backend="race"
        race = race_view(task.payload["race"], attempts, result.stats if result else None)
    view: TaskStatusView = {
        "task_id": task.id,
        "kind": task.kind,
        "queue": task.queue,
        "state": task.status,
        "theorem_id": task.theorem_id,
        "family": task.family,
        "verdict": task.verdict,
        "error": task.error,
        "reason": result.reason if result else None,
        "counterexample": result.counterexample if result else None,
        "bound": result.bound if result else None,
        "backend": result.backend if result else task.payload.get("backend"),
        "strategy": result.strategy if result else None,
        "stats": result.stats if result else None,
        "confirmed_by": (result.stats or {}).get("confirmed_by") if result else None,
        "proof": (result.stats or {}).get("proof") if result else None,
        "agent": result.agent if result else (attempts[-1]["agent"] if attempts else None),
        "attempts": attempts,
        "payload": task.payload,
        "timings": {
            "created_at": iso(task.created_at),
            "started_at": attempts[0]["started_at"] if attempts else None,
            "finished_at": iso(task.finished_at),
            "prover_s": result.elapsed_s if result else None,
            "total_s": _seconds(task.created_at, task.finished_at),
        },
    }
    if race is not None:
        view["race"] = race
    return view


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()  # both aware: UTCDateTime
