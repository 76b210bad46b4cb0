"""The two store writes of every proof attempt as single PostgreSQL statements
(data-modifying CTEs), and the rows they write.

Opening an attempt and committing its result are the hot path of every proof.  As one
statement each they need one round trip instead of four and six (psycopg2 sends BEGIN and
COMMIT as round trips of their own), and they stay exactly as atomic: PostgreSQL runs a
statement's data-modifying CTEs in one snapshot and commits them together.

- :func:`begin_statement` marks the task RUNNING (unless final) and inserts the attempt
  numbered after the task's last.  Because the whole statement sees one snapshot, an attempt
  of the same task committed concurrently is invisible to it: the number collides with the
  unique index and the caller falls back to the two-statement transaction, whose second
  statement sees the first's lock holder's attempt.
- :func:`commit_statement` gates every step on the result insert having won, so a second
  completion of the task (a redelivery, a zombie) changes nothing but its own attempt (closed
  DUPLICATE) and an audit line.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Integer,
    Select,
    Table,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from hms_celery.store.models import Attempt, AuditEvent, ProofResult, Task, TaskStatus
from hms_celery.verification.verdict import ProofOutcome

_TASKS = cast(Table, Task.__table__)
_ATTEMPTS = cast(Table, Attempt.__table__)
_AUDIT = cast(Table, AuditEvent.__table__)
_RESULTS = cast(Table, ProofResult.__table__)


def result_row(
    task_id: str,
    attempt_number: int,
    agent: str,
    theorem_id: str | None,
    outcome: ProofOutcome,
    now: datetime,
) -> dict[str, Any]:
    """The ``proof_results`` row of ``outcome``."""
    return {
        "task_id": task_id,
        "attempt_number": attempt_number,
        "agent": agent,
        "theorem_id": theorem_id,
        "verdict": outcome.verdict.value,
        "reason": outcome.reason,
        "counterexample": outcome.counterexample,
        "bound": outcome.bound,
        "backend": outcome.backend,
        "strategy": outcome.strategy,
        "elapsed_s": outcome.elapsed_s,
        # The other solver's confirmation and the proof method ride in the stats (no
        # columns of their own).
        "stats": {
            **outcome.stats,
            **({"confirmed_by": outcome.confirmed_by} if outcome.confirmed_by else {}),
            **({"proof": outcome.proof} if outcome.proof else {}),
        },
        "created_at": now,
    }


def duplicate_details(row: dict[str, Any]) -> dict[str, Any]:
    """The ``result.duplicate`` audit details of a completion that lost."""
    return {"attempt": row["attempt_number"], "verdict": row["verdict"]}


def disagreement_details(row: dict[str, Any], outcome: ProofOutcome) -> dict[str, Any] | None:
    """The ``proof.solvers_disagree`` audit details, if the solvers contradicted each other
    about the same assertions (a solver or translation bug someone must look at)."""
    if not outcome.reason.startswith("solvers disagree"):
        return None
    return {
        "theorem_id": row["theorem_id"],
        "reason": outcome.reason,
        "disagreement": outcome.stats.get("disagreement"),
    }


def _audit_if(condition: Any, row: dict[str, Any], actor: str, action: str, details: Any) -> Any:
    """A CTE inserting one audit line when ``condition`` holds."""
    values = select(
        literal(row["created_at"], _AUDIT.c.at.type),
        literal(actor),
        literal(action),
        literal(row["task_id"]),
        literal(details, JSON),
    ).where(condition)
    return (
        _AUDIT.insert()
        .from_select(["at", "actor", "action", "subject", "details"], values)
        .returning(_AUDIT.c.id)
        .cte(f"audit_{action.replace('.', '_')}")
    )


def begin_statement(task_id: str, *, agent: str, pid: int | None, now: datetime) -> Select[Any]:
    """One statement opening an attempt of an existing task (PostgreSQL); it selects
    ``number, status, family`` — all None when there is no such task row."""
    running = (
        update(_TASKS)
        .where(_TASKS.c.id == task_id)
        .values(
            status=case(
                (_TASKS.c.status.in_(TaskStatus.FINAL), _TASKS.c.status),
                else_=TaskStatus.RUNNING,
            ),
            updated_at=now,
        )
        .returning(_TASKS.c.status, _TASKS.c.family)
        .cte("running")
    )
    last = (
        select(func.coalesce(func.max(_ATTEMPTS.c.number), 0))
        .where(_ATTEMPTS.c.task_id == task_id)
        .scalar_subquery()
    )
    values = select(
        literal(task_id),
        last + 1,
        literal(agent),
        literal(pid, Integer),
        literal(now, _ATTEMPTS.c.started_at.type),
    ).where(exists(select(running.c.status)))
    opened = (
        _ATTEMPTS.insert()
        .from_select(["task_id", "number", "agent", "pid", "started_at"], values)
        .returning(_ATTEMPTS.c.number)
        .cte("opened")
    )
    return select(
        select(opened.c.number).scalar_subquery().label("number"),
        select(running.c.status).scalar_subquery().label("status"),
        select(running.c.family).scalar_subquery().label("family"),
    )


def commit_statement(row: dict[str, Any], *, agent: str, outcome: ProofOutcome) -> Select[Any]:
    """One statement committing ``row`` (PostgreSQL); it selects whether the insert won."""
    task_id, number, now = row["task_id"], row["attempt_number"], row["created_at"]
    inserted = (
        pg_insert(_RESULTS)
        .values(**row)
        .on_conflict_do_nothing()
        .returning(_RESULTS.c.task_id)
        .cte("inserted")
    )
    won = exists(select(inserted.c.task_id))
    done = (
        update(_TASKS)
        .where(_TASKS.c.id == task_id, won)
        .values(status=TaskStatus.DONE, verdict=row["verdict"], finished_at=now, updated_at=now)
        .returning(_TASKS.c.id)
        .cte("done")
    )
    own = _ATTEMPTS.c.number == number
    closed = (
        update(_ATTEMPTS)
        .where(_ATTEMPTS.c.task_id == task_id, or_(own, and_(_ATTEMPTS.c.ended_at.is_(None), won)))
        .values(
            ended_at=now,
            outcome=case((and_(own, won), row["verdict"]), (own, "DUPLICATE"), else_="ABANDONED"),
            error=case((own, None), else_=_ATTEMPTS.c.error),
        )
        .returning(_ATTEMPTS.c.number)
        .cte("closed")
    )
    ctes = [done, closed, _audit_if(~won, row, agent, "result.duplicate", duplicate_details(row))]
    if (disagreement := disagreement_details(row, outcome)) is not None:
        ctes.append(_audit_if(won, row, agent, "proof.solvers_disagree", disagreement))
    # Every CTE must be referenced to be rendered (PostgreSQL runs each one regardless).
    counts = [select(func.count()).select_from(cte).scalar_subquery() for cte in ctes]
    return select(won.label("won"), *counts)
