"""Attempts of a task and the commit of its result: open, close, commit once.

Every function is one transaction.  ``commit_result`` is idempotent, keyed by the task id:
the first completion wins and any later one (a redelivery, a zombie) changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, and_, case, func, insert, literal, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from hms_celery.store.attempt_sql import (
    BEGIN,
    begin_params,
    commit_params,
    disagreement_details,
    duplicate_details,
    result_row,
)
from hms_celery.store.audit import audit
from hms_celery.store.db import (
    connection_scope,
    dialect_insert,
    get_engine,
    session_scope,
    statement_scope,
)
from hms_celery.store.models import Attempt, ProofResult, Task, TaskStatus, utcnow
from hms_celery.store.tasks import mark_running
from hms_celery.verification.verdict import ProofOutcome

# Declarative `__table__` is typed as FromClause; for these models it is a Table.
_TASKS = cast(Table, Task.__table__)
_ATTEMPTS = cast(Table, Attempt.__table__)


class AttemptStart(NamedTuple):
    """What :func:`begin_attempt` returns."""

    number: int
    task_final: bool
    family: str | None = None


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


def skip_attempt(task_id: str, number: int) -> None:
    """Close an attempt that did not run because the task was already final."""
    with connection_scope() as conn:
        _close_attempt(conn, task_id, number, "DUPLICATE", "task already final: not run again")


def abandon_attempt(task_id: str, number: int, reason: str) -> bool:
    """Close an attempt whose agent died (the task is re-published as a new attempt).  True
    if this call closed it: of two sweeps that saw it open, only one requeues it."""
    with connection_scope() as conn:
        closed = conn.execute(
            update(_ATTEMPTS)
            .where(
                _ATTEMPTS.c.task_id == task_id,
                _ATTEMPTS.c.number == number,
                _ATTEMPTS.c.ended_at.is_(None),
            )
            .values(ended_at=utcnow(), outcome="LOST", error=reason)
        )
        return closed.rowcount == 1


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


def count_results(task_id: str) -> int:
    """How many results are committed for ``task_id`` (0 or 1, by construction)."""
    with session_scope() as session:
        return (
            session.scalar(
                select(func.count()).select_from(ProofResult).where(ProofResult.task_id == task_id)
            )
            or 0
        )
