"""Store operations used by the client and the workers.

Every function is one transaction.  ``commit_result`` is idempotent, keyed by the task id:
the first completion wins and any later one (a redelivery, a zombie) changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, and_, case, func, insert, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from hms_celery.store.attempt_sql import (
    BEGIN,
    begin_params,
    commit_params,
    disagreement_details,
    duplicate_details,
    result_row,
)
from hms_celery.store.db import (
    connection_scope,
    dialect_insert,
    get_engine,
    session_scope,
    statement_scope,
)
from hms_celery.store.models import Attempt, AuditEvent, ProofResult, Task, TaskStatus, utcnow
from hms_celery.store.records import AttemptView, TaskStatusView
from hms_celery.verification.verdict import ProofOutcome

# Declarative `__table__` is typed as FromClause; for these models it is a Table.
_TASKS = cast(Table, Task.__table__)
_ATTEMPTS = cast(Table, Attempt.__table__)
_AUDIT = cast(Table, AuditEvent.__table__)


# Prebuilt (SQLite, PostgreSQL): building an INSERT per call costs more than sending it.
_INSERT = (sqlite_insert(_TASKS), pg_insert(_TASKS))
_INSERT_IF_ABSENT = tuple(stmt.on_conflict_do_nothing() for stmt in _INSERT)


class AttemptStart(NamedTuple):
    """What :func:`begin_attempt` returns."""

    number: int
    task_final: bool
    family: str | None = None


def skip_attempt(task_id: str, number: int) -> None:
    """Close an attempt that did not run because the task was already final."""
    with connection_scope() as conn:
        _close_attempt(conn, task_id, number, "DUPLICATE", "task already final: not run again")


def audit(
    conn: Connection | Session, actor: str, action: str, subject: str | None, **details: Any
) -> None:
    """Append one audit event inside ``conn``'s transaction."""
    conn.execute(
        insert(_AUDIT).values(
            at=utcnow(), actor=actor, action=action, subject=subject, details=details
        )
    )


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


def begin_attempt(
    task_id: str,
    *,
    agent: str,
    pid: int | None,
    payload: dict[str, Any],
    queue: str,
    theorem_id: str | None = None,
) -> AttemptStart:
    """Open a new attempt of ``task_id`` on ``agent``: its number (1, 2, …) and whether the
    task already has a final state (a redelivered copy then need not run again).

    A task published without the client (e.g. ``send_task``) gets its row here.
    """
    now = utcnow()
    if get_engine().dialect.name == "postgresql":
        try:
            with statement_scope() as conn:
                params = begin_params(task_id, agent=agent, pid=pid, now=now)
                one = conn.execute(BEGIN, params).one()
        except IntegrityError:  # a concurrent attempt took the number: the transaction below
            one = None
        if one is not None and one.number is not None:
            return AttemptStart(one.number, one.status in TaskStatus.FINAL, one.family)
    with connection_scope() as conn:
        # Updating the task row first also locks it (PostgreSQL), so concurrent attempts of
        # one task get distinct numbers.
        found = mark_running(conn, task_id, now, _TASKS.c.status, _TASKS.c.family)
        status, family = (found.status, found.family) if found else (None, None)
        if status is None:
            conn.execute(
                insert(_TASKS).values(
                    id=task_id,
                    kind="proof",
                    queue=queue,
                    status=TaskStatus.RUNNING,
                    theorem_id=theorem_id,
                    payload=payload,
                    created_at=now,
                    updated_at=now,
                )
            )
        next_number = (
            select(func.coalesce(func.max(_ATTEMPTS.c.number), 0) + 1)
            .where(_ATTEMPTS.c.task_id == task_id)
            .scalar_subquery()
        )
        number = conn.execute(
            insert(_ATTEMPTS)
            .values(task_id=task_id, number=next_number, agent=agent, pid=pid, started_at=now)
            .returning(_ATTEMPTS.c.number)
        ).scalar_one()
        return AttemptStart(number, status in TaskStatus.FINAL, family)


def abandon_attempt(task_id: str, number: int, reason: str) -> None:
    """Close an attempt whose agent died (the task is re-published as a new attempt)."""
    with connection_scope() as conn:
        conn.execute(
            update(_ATTEMPTS)
            .where(
                _ATTEMPTS.c.task_id == task_id,
                _ATTEMPTS.c.number == number,
                _ATTEMPTS.c.ended_at.is_(None),
            )
            .values(ended_at=utcnow(), outcome="LOST", error=reason)
        )


def commit_result(
    task_id: str,
    *,
    attempt_number: int,
    agent: str,
    theorem_id: str | None,
    outcome: ProofOutcome,
) -> bool:
    """Commit ``outcome`` as the task's result unless one exists. True if this call won.

    One transaction: insert the result (the first completion wins), mark the task DONE, close
    this attempt (its verdict, or DUPLICATE) and abandon the others left open by a lost pool
    process or a requeue, and audit a duplicate or a solvers' disagreement.  On PostgreSQL it
    is one statement (:data:`hms_celery.store.attempt_sql.COMMIT`), sent without
    BEGIN/COMMIT round trips: a single statement is atomic on its own.
    """
    now = utcnow()
    row = result_row(task_id, attempt_number, agent, theorem_id, outcome, now)
    if get_engine().dialect.name == "postgresql":
        with statement_scope() as conn:
            stmt, params = commit_params(row, agent=agent, outcome=outcome)
            return bool(conn.execute(stmt, params).scalar_one())
    with connection_scope() as conn:
        won = insert_result(
            conn,
            task_id,
            attempt_number=attempt_number,
            agent=agent,
            theorem_id=theorem_id,
            outcome=outcome,
            now=now,
        )
        own = _ATTEMPTS.c.number == attempt_number
        conn.execute(
            update(_ATTEMPTS)
            .where(
                _ATTEMPTS.c.task_id == task_id,
                or_(own, and_(_ATTEMPTS.c.ended_at.is_(None), literal(won))),
            )
            .values(
                ended_at=now,
                outcome=case(
                    (own, outcome.verdict.value if won else "DUPLICATE"), else_="ABANDONED"
                ),
                error=case((own, None), else_=_ATTEMPTS.c.error),
            )
        )
        if not won:
            audit(conn, agent, "result.duplicate", task_id, **duplicate_details(row))
        return won


def insert_result(
    conn: Connection,
    task_id: str,
    *,
    attempt_number: int,
    agent: str,
    theorem_id: str | None,
    outcome: ProofOutcome,
    now: datetime,
) -> bool:
    """Inside ``conn``'s transaction: insert the task's result unless one exists (``ON
    CONFLICT DO NOTHING``) and, if this call won, mark the task DONE and audit a solvers'
    disagreement.  True if it won.  (:func:`commit_result`, and race legs, which close their
    attempts themselves: :mod:`hms_celery.agents.race`.)"""
    row = result_row(task_id, attempt_number, agent, theorem_id, outcome, now)
    won = (
        conn.execute(
            dialect_insert(conn)(ProofResult.__table__).values(**row).on_conflict_do_nothing()
        ).rowcount
        == 1
    )
    if not won:
        return False
    conn.execute(
        update(_TASKS)
        .where(_TASKS.c.id == task_id)
        .values(
            status=TaskStatus.DONE,
            verdict=outcome.verdict.value,
            finished_at=now,
            updated_at=now,
        )
    )
    if disagreement := disagreement_details(row, outcome):
        audit(conn, agent, "proof.solvers_disagree", task_id, **disagreement)
    return True


def complete_task(task_id: str, *, attempt_number: int, outcome: str = "DONE") -> None:
    """A task that commits no proof result (a GA step) ended well: close the attempt and
    mark the task DONE (unless already final)."""
    now = utcnow()
    with connection_scope() as conn:
        _close_attempt(conn, task_id, attempt_number, outcome)
        conn.execute(
            update(_TASKS)
            .where(_TASKS.c.id == task_id, _TASKS.c.status.not_in(TaskStatus.FINAL))
            .values(status=TaskStatus.DONE, finished_at=now, updated_at=now)
        )


def release_attempt(task_id: str, *, attempt_number: int, why: str) -> None:
    """Close an attempt that will be retried later (the task stays pending)."""
    with connection_scope() as conn:
        _close_attempt(conn, task_id, attempt_number, "RETRY", why)
        conn.execute(
            update(_TASKS)
            .where(_TASKS.c.id == task_id, _TASKS.c.status.not_in(TaskStatus.FINAL))
            .values(status=TaskStatus.PENDING, updated_at=utcnow())
        )


def fail_attempt(task_id: str, *, attempt_number: int, agent: str, error: str) -> None:
    """An attempt ended in an exception: close it and mark the task FAILED (unless done)."""
    with connection_scope() as conn:
        _close_attempt(conn, task_id, attempt_number, "ERROR", error)
        conn.execute(
            update(_TASKS)
            .where(_TASKS.c.id == task_id, _TASKS.c.status.not_in(TaskStatus.FINAL))
            .values(status=TaskStatus.FAILED, error=error, finished_at=utcnow())
        )
        audit(conn, agent, "task.failed", task_id, attempt=attempt_number, error=error)


def _close_attempt(
    conn: Connection, task_id: str, number: int, outcome: str, error: str | None = None
) -> None:
    conn.execute(
        update(_ATTEMPTS)
        .where(_ATTEMPTS.c.task_id == task_id, _ATTEMPTS.c.number == number)
        .values(ended_at=utcnow(), outcome=outcome, error=error)
    )


def task_status(task_id: str) -> TaskStatusView | None:
    """Everything the store knows about a task, as JSON-ready data (None if unknown)."""
    return task_statuses([task_id]).get(task_id)


def task_statuses(task_ids: Sequence[str]) -> dict[str, TaskStatusView]:
    """:func:`task_status` of many tasks in three queries (unknown ids are left out)."""
    if not task_ids:
        return {}
    with session_scope() as session:
        tasks = session.scalars(
            select(Task)
            .where(Task.id.in_(list(task_ids)))
            .options(selectinload(Task.attempts), selectinload(Task.result))
        )
        return {task.id: _status_json(task) for task in tasks}


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


def _status_json(task: Task) -> TaskStatusView:
    result = task.result
    attempts: list[AttemptView] = [
        {
            "number": a.number,
            "agent": a.agent,
            "pid": a.pid,
            "started_at": _iso(a.started_at),
            "ended_at": _iso(a.ended_at),
            "outcome": a.outcome,
            "error": a.error,
            "leg": a.leg,
        }
        for a in task.attempts
    ]
    race = None
    if isinstance(task.payload, dict) and task.payload.get("race"):  # backend="race"
        from hms_celery.agents.race.view import race_view

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
            "created_at": _iso(task.created_at),
            "started_at": attempts[0]["started_at"] if attempts else None,
            "finished_at": _iso(task.finished_at),
            "prover_s": result.elapsed_s if result else None,
            "total_s": _seconds(task.created_at, task.finished_at),
        },
    }
    if race is not None:
        view["race"] = race
    return view


def audit_events(
    subject: str | None = None,
    limit: int | None = 100,
    *,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """The newest ``limit`` audit events (None: all) that match every filter given, oldest
    first: about ``subject``; whose action is ``action`` or starts with ``action.`` (an
    ``action`` ending in ``.`` or ``*`` is a plain prefix: ``recovery.``); at or after
    ``since`` and before ``until`` (aware datetimes; naive ones are taken as UTC)."""
    with session_scope() as session:
        query = select(AuditEvent).order_by(AuditEvent.id.desc())
        if limit is not None:
            query = query.limit(limit)
        if subject is not None:
            query = query.where(AuditEvent.subject == subject)
        if action:
            if action.endswith(("*", ".")):
                prefix = action.rstrip("*")
                query = query.where(AuditEvent.action.startswith(prefix, autoescape=True))
            else:
                query = query.where(
                    (AuditEvent.action == action)
                    | AuditEvent.action.startswith(action + ".", autoescape=True)
                )
        if since is not None:
            query = query.where(AuditEvent.at >= since)  # UTCDateTime: naive is UTC
        if until is not None:
            query = query.where(AuditEvent.at < until)
        events = list(session.scalars(query))
        return [
            {
                "id": e.id,
                "at": _iso(e.at),
                "actor": e.actor,
                "action": e.action,
                "subject": e.subject,
                "details": e.details,
            }
            for e in reversed(events)
        ]


def count_results(task_id: str) -> int:
    """How many results are committed for ``task_id`` (0 or 1, by construction)."""
    with session_scope() as session:
        return (
            session.scalar(
                select(func.count()).select_from(ProofResult).where(ProofResult.task_id == task_id)
            )
            or 0
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()  # both aware: UTCDateTime
