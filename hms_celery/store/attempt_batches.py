"""The attempt writes of a batch of proof tasks (one ``hms.prove_batch`` message): every
attempt opened in one transaction before any proof runs, every result committed in one.

Each function does, for every member, exactly what its one-task counterpart in
:mod:`hms_celery.store.attempts` does — the same rows, states and audit lines — with a
handful of multi-row statements per batch instead of a few statements per task:

- :func:`begin_attempts` marks the tasks RUNNING (unless final) and opens an attempt of each,
  numbered after the task's last.  Its first statement updates, and so locks (PostgreSQL),
  every task row in id order, so a concurrent attempt of a member waits for this transaction
  and the second statement (a new snapshot) numbers after it.  A member without a task row
  (published around the client) takes the one-task path, which records the row.
- :func:`commit_results` inserts every result (``ON CONFLICT DO NOTHING``: the first
  completion of a task wins), marks the winners DONE, closes each member's attempt (its
  verdict, or DUPLICATE), abandons the other attempts of the winners left open, and audits
  the duplicates and the solvers' disagreements.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, and_, case, func, insert, select, tuple_, update

from hms_celery.store.attempt_sql import disagreement_details, duplicate_details, result_row
from hms_celery.store.attempts import AttemptStart, begin_attempt
from hms_celery.store.audit import audit
from hms_celery.store.db import connection_scope, dialect_insert
from hms_celery.store.models import Attempt, ProofResult, Task, TaskStatus, utcnow
from hms_celery.verification.verdict import ProofOutcome

_TASKS = cast(Table, Task.__table__)
_ATTEMPTS = cast(Table, Attempt.__table__)
_RESULTS = cast(Table, ProofResult.__table__)

#: The reason a member's attempt is closed without running (as :func:`skip_attempt` says).
ALREADY_FINAL = "task already final: not run again"


@dataclass(frozen=True)
class Member:
    """One task of a batch as :func:`begin_attempts` needs it."""

    task_id: str
    payload: dict[str, Any]
    theorem_id: str | None = None


@dataclass(frozen=True)
class Finished:
    """One member's outcome for :func:`commit_results`."""

    task_id: str
    attempt_number: int
    theorem_id: str | None
    outcome: ProofOutcome


def begin_attempts(
    members: Sequence[Member], *, agent: str, pid: int | None, queue: str
) -> list[AttemptStart]:
    """Open an attempt of every member on ``agent``, in one transaction; the starts in the
    members' order.  A member whose task is already final gets its attempt closed DUPLICATE
    at once (``task_final``: the caller does not run it)."""
    if not members:
        return []
    ids = sorted({m.task_id for m in members})
    now = utcnow()
    starts: dict[str, AttemptStart] = {}
    with connection_scope() as conn:
        marked = conn.execute(
            update(_TASKS)
            .where(_TASKS.c.id.in_(ids))
            .values(
                status=case(
                    (_TASKS.c.status.in_(TaskStatus.FINAL), _TASKS.c.status),
                    else_=TaskStatus.RUNNING,
                ),
                updated_at=now,
            )
            .returning(_TASKS.c.id, _TASKS.c.status, _TASKS.c.family)
        ).all()
        found = {row.id: row for row in marked}
        opened = [task_id for task_id in ids if task_id in found]
        if opened:
            # Numbered after each task's last attempt, read after the UPDATE above took the
            # rows' locks.  Executemany statements: SQLAlchemy compiles them once (a
            # multi-row VALUES clause would be compiled anew for every batch).
            last = dict(
                conn.execute(
                    select(_ATTEMPTS.c.task_id, func.max(_ATTEMPTS.c.number))
                    .where(_ATTEMPTS.c.task_id.in_(opened))
                    .group_by(_ATTEMPTS.c.task_id)
                ).all()
            )
            numbers = {task_id: int(last.get(task_id) or 0) + 1 for task_id in opened}
            conn.execute(
                insert(_ATTEMPTS),
                [
                    {"task_id": t, "number": n, "agent": agent, "pid": pid, "started_at": now}
                    for t, n in numbers.items()
                ],
            )
            for task_id, number in numbers.items():
                task = found[task_id]
                starts[task_id] = AttemptStart(number, task.status in TaskStatus.FINAL, task.family)
            final = [(t, s.number) for t, s in starts.items() if s.task_final]
            if final:
                conn.execute(
                    update(_ATTEMPTS)
                    .where(tuple_(_ATTEMPTS.c.task_id, _ATTEMPTS.c.number).in_(final))
                    .values(ended_at=now, outcome="DUPLICATE", error=ALREADY_FINAL)
                )
    for m in members:  # no task row: the one-task path records it (and skips nothing)
        if m.task_id not in starts:
            starts[m.task_id] = begin_attempt(
                m.task_id, agent=agent, pid=pid, payload=m.payload, queue=queue,
                theorem_id=m.theorem_id,
            )  # fmt: skip
    return [starts[m.task_id] for m in members]


def commit_results(finished: Sequence[Finished], *, agent: str) -> list[bool]:
    """Commit every member's outcome unless its task has a result, in one transaction; for
    each member, whether it won (as :func:`~hms_celery.store.attempts.commit_result`)."""
    if not finished:
        return []
    now = utcnow()
    rows = {
        f.task_id: result_row(f.task_id, f.attempt_number, agent, f.theorem_id, f.outcome, now)
        for f in finished
    }
    with connection_scope() as conn:
        won = set(
            conn.execute(
                dialect_insert(conn)(_RESULTS)
                .on_conflict_do_nothing()
                .returning(_RESULTS.c.task_id),
                list(rows.values()),
            ).scalars()
        )
        by_verdict: dict[str, list[str]] = defaultdict(list)
        closing: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for f in finished:
            if f.task_id in won:
                by_verdict[f.outcome.verdict.value].append(f.task_id)
            outcome = f.outcome.verdict.value if f.task_id in won else "DUPLICATE"
            closing[outcome].append((f.task_id, f.attempt_number))
        for verdict, task_ids in sorted(by_verdict.items()):
            conn.execute(
                update(_TASKS)
                .where(_TASKS.c.id.in_(task_ids))
                .values(status=TaskStatus.DONE, verdict=verdict, finished_at=now, updated_at=now)
            )
        for outcome, pairs in sorted(closing.items()):
            conn.execute(
                update(_ATTEMPTS)
                .where(tuple_(_ATTEMPTS.c.task_id, _ATTEMPTS.c.number).in_(pairs))
                .values(ended_at=now, outcome=outcome, error=None)
            )
        if won:  # the winners' other attempts, left open by a lost process or a requeue
            conn.execute(
                update(_ATTEMPTS)
                .where(and_(_ATTEMPTS.c.task_id.in_(sorted(won)), _ATTEMPTS.c.ended_at.is_(None)))
                .values(ended_at=now, outcome="ABANDONED")
            )
        for f in finished:
            row = rows[f.task_id]
            if f.task_id not in won:
                audit(conn, agent, "result.duplicate", f.task_id, **duplicate_details(row))
            elif (disagreement := disagreement_details(row, f.outcome)) is not None:
                audit(conn, agent, "proof.solvers_disagree", f.task_id, **disagreement)
    return [f.task_id in won for f in finished]
