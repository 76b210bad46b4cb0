"""The two store writes of every proof attempt as single PostgreSQL statements
(data-modifying CTEs), and the rows they write.

Opening an attempt and committing its result are the hot path of every proof.  As one
statement each they need one round trip instead of four and six (psycopg2 sends BEGIN and
COMMIT as round trips of their own), and they stay exactly as atomic: PostgreSQL runs a
statement's data-modifying CTEs in one snapshot and commits them together.

- :data:`BEGIN` marks the task RUNNING (unless final) and inserts the attempt
  numbered after the task's last.  Because the whole statement sees one snapshot, an attempt
  of the same task committed concurrently is invisible to it: the number collides with the
  unique index and the caller falls back to the two-statement transaction, whose second
  statement sees the first's lock holder's attempt.
- :data:`COMMIT` gates every step on the result insert having won, so a second
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
    String,
    Table,
    and_,
    bindparam,
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


def _audit_if(condition: Any, action: str, details: str) -> Any:
    """A CTE inserting one audit line (``:agent`` about ``:task_id`` at ``:now``, details from
    the JSON parameter ``details``) when ``condition`` holds."""
    values = select(
        bindparam("p_now", type_=_AUDIT.c.at.type),
        bindparam("p_agent", type_=String()),
        literal(action),
        bindparam("p_task_id", type_=String()),
        bindparam(f"p_{details}", type_=JSON()),
    ).where(condition)
    return (
        _AUDIT.insert()
        .from_select(["at", "actor", "action", "subject", "details"], values)
        .returning(_AUDIT.c.id)
        .cte(f"audit_{action.replace('.', '_')}")
    )


def _begin_statement() -> Select[Any]:
    running = (
        update(_TASKS)
        .where(_TASKS.c.id == bindparam("p_task_id"))
        .values(
            status=case(
                (_TASKS.c.status.in_(TaskStatus.FINAL), _TASKS.c.status),
                else_=TaskStatus.RUNNING,
            ),
            updated_at=bindparam("p_now", type_=_TASKS.c.updated_at.type),
        )
        .returning(_TASKS.c.status, _TASKS.c.family)
        .cte("running")
    )
    last = (
        select(func.coalesce(func.max(_ATTEMPTS.c.number), 0))
        .where(_ATTEMPTS.c.task_id == bindparam("p_task_id"))
        .scalar_subquery()
    )
    values = select(
        bindparam("p_task_id", type_=String()),
        last + 1,
        bindparam("p_agent", type_=String()),
        bindparam("p_pid", type_=Integer()),
        bindparam("p_now", type_=_ATTEMPTS.c.started_at.type),
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


def _commit_statement(*, audit_disagreement: bool) -> Select[Any]:
    result = {c.name: bindparam(f"p_{c.name}", type_=c.type) for c in _RESULTS.columns}
    inserted = (
        pg_insert(_RESULTS)
        .values(**result)
        .on_conflict_do_nothing()
        .returning(_RESULTS.c.task_id)
        .cte("inserted")
    )
    won = exists(select(inserted.c.task_id))
    now = bindparam("p_created_at", type_=_TASKS.c.finished_at.type)
    done = (
        update(_TASKS)
        .where(_TASKS.c.id == bindparam("p_task_id"), won)
        .values(
            status=TaskStatus.DONE,
            verdict=bindparam("p_verdict", type_=String()),
            finished_at=now,
            updated_at=now,
        )
        .returning(_TASKS.c.id)
        .cte("done")
    )
    own = _ATTEMPTS.c.number == bindparam("p_attempt_number")
    closed = (
        update(_ATTEMPTS)
        .where(
            _ATTEMPTS.c.task_id == bindparam("p_task_id"),
            or_(own, and_(_ATTEMPTS.c.ended_at.is_(None), won)),
        )
        .values(
            ended_at=now,
            outcome=case(
                (and_(own, won), bindparam("p_verdict", type_=String())),
                (own, "DUPLICATE"),
                else_="ABANDONED",
            ),
            error=case((own, None), else_=_ATTEMPTS.c.error),
        )
        .returning(_ATTEMPTS.c.number)
        .cte("closed")
    )
    ctes = [done, closed, _audit_if(~won, "result.duplicate", "duplicate")]
    if audit_disagreement:
        ctes.append(_audit_if(won, "proof.solvers_disagree", "disagreement"))
    # Every CTE must be referenced to be rendered (PostgreSQL runs each one regardless).
    counts = [select(func.count()).select_from(cte).scalar_subquery() for cte in ctes]
    return select(won.label("won"), *counts)


# Built once: constructing these statements costs more than the round trips they save, and a
# prebuilt statement is also a hit in SQLAlchemy's compiled cache without recomputing its key.
BEGIN = _begin_statement()
COMMIT = _commit_statement(audit_disagreement=False)
COMMIT_AND_AUDIT_DISAGREEMENT = _commit_statement(audit_disagreement=True)


def begin_params(task_id: str, *, agent: str, pid: int | None, now: datetime) -> dict[str, Any]:
    """The parameters of :data:`BEGIN`: it selects ``number, status, family`` — all None when
    there is no such task row."""
    return {"p_task_id": task_id, "p_agent": agent, "p_pid": pid, "p_now": now}


def commit_params(row: dict[str, Any], *, agent: str, outcome: ProofOutcome) -> tuple[Any, dict]:
    """:data:`COMMIT` (or the variant auditing a solvers' disagreement) and its parameters:
    it selects whether the insert won."""
    # Every parameter is prefixed: an UPDATE would also SET a column a parameter is named after.
    params = {f"p_{k}": v for k, v in row.items()}
    params.update(p_now=row["created_at"], p_duplicate=duplicate_details(row))
    if (disagreement := disagreement_details(row, outcome)) is not None:
        return COMMIT_AND_AUDIT_DISAGREEMENT, {**params, "p_disagreement": disagreement}
    return COMMIT, params
