"""The race's store transactions: start a leg, finish it (and decide), cancel the losers.

Each function is one transaction that first updates the task row, which locks it on
PostgreSQL (and takes SQLite's write lock), so the legs of one race are decided one at a
time: two legs finishing together cannot both win, nor both leave the race open.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.engine import Connection, Row

from hms_celery.agents.race.decide import Action, Arrival, Committed, Step, on_arrival
from hms_celery.agents.race.plan import Leg
from hms_celery.store import repository
from hms_celery.store.db import connection_scope
from hms_celery.store.models import Attempt, ProofResult, Task, TaskStatus, utcnow
from hms_celery.verification.verdict import ProofOutcome, Verdict

# Declarative `__table__` is typed as FromClause; for these models it is a Table.
_TASKS = cast(Table, Task.__table__)
_ATTEMPTS = cast(Table, Attempt.__table__)
_RESULTS = cast(Table, ProofResult.__table__)

CANCELLED = "CANCELLED"
#: Attempt outcomes after which the leg runs again (it was requeued or redelivered).
AGAIN = frozenset({"LOST", "ABANDONED", "RETRY"})
NOT_STARTED = "(not started)"  # the agent of a CANCELLED attempt of a leg that never ran


class LegStart(NamedTuple):
    """What :func:`start_leg` returns: the attempt number (None: the leg does not run)."""

    number: int | None
    payload: dict[str, Any] | None
    theorem_id: str | None
    family: str | None


class LegRef(NamedTuple):
    """A running leg to revoke: its attempt, agent and Celery task id."""

    number: int
    index: int  # type: ignore[assignment]  # mypy rejects a field named like tuple.index
    label: str
    agent: str
    celery_id: str


class Finish(NamedTuple):
    """What :func:`finish_leg` returns: the decision and, after a decisive win, the running
    legs to revoke (the legs that had not started are recorded CANCELLED already)."""

    step: Step
    committed: bool
    running: list[LegRef]
    not_started: list[Leg]


def plan_of(payload: dict[str, Any] | None) -> list[Leg]:
    """The legs of a raced task's payload (``payload["race"]["legs"]``)."""
    race = (payload or {}).get("race") or {}
    return [Leg.from_json(x) for x in race.get("legs") or []]


def start_leg(task_id: str, leg: Leg, *, agent: str, pid: int | None) -> LegStart:
    """Open an attempt of ``task_id`` for ``leg`` — unless the leg need not run: it already
    finished (a redelivered copy), or the race is decided (then a CANCELLED attempt records
    that it was not run, once)."""
    now = utcnow()
    with connection_scope() as conn:
        task = repository.mark_running(
            conn, task_id, now, _TASKS.c.status, _TASKS.c.payload, _TASKS.c.theorem_id,
            _TASKS.c.family,
        )  # fmt: skip
        if task is None:  # published around the client: there is no race to run a leg of
            return LegStart(None, None, None, None)
        rows = [r for r in _leg_rows(conn, task_id) if _index(r) == leg.index]
        for row in rows:  # a copy left open by a lost pool process: superseded now
            if row.ended_at is None:
                _close(conn, task_id, row.number, "ABANDONED", now, "superseded by a new copy")
        if any(r.ended_at is not None and r.outcome not in AGAIN for r in rows):
            return LegStart(None, None, task.theorem_id, task.family)  # it has its outcome
        if task.status in TaskStatus.FINAL:
            _insert(conn, task_id, leg, agent, pid, now, ended=True, error=_not_run(conn, task_id))
            return LegStart(None, None, task.theorem_id, task.family)
        number = _insert(conn, task_id, leg, agent, pid, now)
        return LegStart(number, task.payload, task.theorem_id, task.family)


def finish_leg(task_id: str, number: int, leg: Leg, *, agent: str, outcome: ProofOutcome) -> Finish:
    """Record ``outcome`` as leg ``leg``'s (attempt ``number``) and apply the race's decision
    (:func:`~.decide.on_arrival`): commit, retract, or only record."""
    now = utcnow()
    with connection_scope() as conn:
        task = conn.execute(
            update(_TASKS)
            .where(_TASKS.c.id == task_id)
            .values(updated_at=now)
            .returning(_TASKS.c.payload, _TASKS.c.theorem_id)
        ).one()
        plan = plan_of(task.payload)
        rows = _leg_rows(conn, task_id)
        arrivals = [a for r in _arrived(rows) if r.number != number for a in [_arrival(r)]]
        arrivals.append(Arrival(leg.index, leg.label, agent, outcome))
        committed = _committed(conn, task_id)
        step = on_arrival(len(plan), arrivals, committed)
        late = committed is not None
        note = (
            f"finished after the race was decided ({committed.label}: "
            f"{committed.outcome.verdict.value})"
            if committed is not None
            else None
        )
        conn.execute(
            update(_ATTEMPTS)
            .where(_ATTEMPTS.c.task_id == task_id, _ATTEMPTS.c.number == number)
            .values(
                ended_at=now,
                outcome=outcome.verdict.value,
                error=note,
                leg={**_leg_json(leg), "outcome": outcome.to_json(), "late": late},
            )
        )
        won = False
        running: list[LegRef] = []
        not_started: list[Leg] = []
        if step.action is Action.COMMIT:
            assert step.outcome is not None
            source = _source(rows, step.leg, number, agent)
            won = repository.insert_result(
                conn,
                task_id,
                attempt_number=source[0],
                agent=source[1],
                theorem_id=task.theorem_id,
                outcome=step.outcome,
                now=now,
            )
            if won and step.cancel:
                running, not_started = _losers(conn, task_id, plan, rows, leg, now)
        elif step.action is Action.RETRACT:
            assert step.outcome is not None
            _retract(conn, task_id, step.outcome, now)
        if step.audit is not None:
            repository.audit(
                conn,
                agent,
                "proof.solvers_disagree",
                task_id,
                theorem_id=task.theorem_id,
                **step.audit,
            )
        return Finish(step, won, running, not_started)


def mark_cancelled(task_id: str, cancelled: dict[int, str]) -> list[int]:
    """Close the still open attempts ``{number: why}`` as CANCELLED; returns those closed."""
    if not cancelled:
        return []
    now = utcnow()
    done = []
    with connection_scope() as conn:
        for number, why in sorted(cancelled.items()):
            hit = conn.execute(
                update(_ATTEMPTS)
                .where(
                    _ATTEMPTS.c.task_id == task_id,
                    _ATTEMPTS.c.number == number,
                    _ATTEMPTS.c.ended_at.is_(None),
                )
                .values(ended_at=now, outcome=CANCELLED, error=why)
            ).rowcount
            if hit:
                done.append(number)
    return done


def still_open(task_id: str, numbers: list[int]) -> list[int]:
    """Which of the attempts ``numbers`` of ``task_id`` are still open."""
    if not numbers:
        return []
    with connection_scope() as conn:
        return sorted(
            conn.execute(
                select(_ATTEMPTS.c.number).where(
                    _ATTEMPTS.c.task_id == task_id,
                    _ATTEMPTS.c.number.in_(numbers),
                    _ATTEMPTS.c.ended_at.is_(None),
                )
            ).scalars()
        )


def leg_of_attempt(task_id: str, number: int) -> tuple[Leg, dict[str, Any]] | None:
    """The leg attempt ``number`` of ``task_id`` ran and the task's payload (None: the attempt
    is not a race leg's)."""
    with connection_scope() as conn:
        row = conn.execute(
            select(_ATTEMPTS.c.leg, _TASKS.c.payload)
            .join(_TASKS, _TASKS.c.id == _ATTEMPTS.c.task_id)
            .where(_ATTEMPTS.c.task_id == task_id, _ATTEMPTS.c.number == number)
        ).first()
    if row is None or not row.leg:
        return None
    index = row.leg.get("index")
    leg = next((leg for leg in plan_of(row.payload) if leg.index == index), None)
    return (leg, row.payload) if leg is not None else None


# ----------------------------------------------------------------------------- helpers
def _leg_rows(conn: Connection, task_id: str) -> list[Row[Any]]:
    """Every attempt of the task that ran (or was to run) a leg, by number."""
    return list(
        conn.execute(
            select(_ATTEMPTS)
            .where(_ATTEMPTS.c.task_id == task_id, _ATTEMPTS.c.leg.is_not(None))
            .order_by(_ATTEMPTS.c.number)
        )
    )


def _index(row: Row[Any]) -> int | None:
    return (row.leg or {}).get("index")


def _arrived(rows: list[Row[Any]]) -> list[Row[Any]]:
    """The attempts that gave their leg's final word (an outcome, or CANCELLED), in the
    order they did (their end)."""
    done = [r for r in rows if r.ended_at is not None and r.outcome not in AGAIN]
    return sorted(done, key=lambda r: (r.ended_at, r.number))


def _arrival(row: Row[Any]) -> Arrival:
    data = (row.leg or {}).get("outcome")
    outcome = ProofOutcome.from_json(data) if data and row.outcome != CANCELLED else None
    return Arrival(_index(row) or 0, (row.leg or {}).get("label", "?"), row.agent, outcome)


def _committed(conn: Connection, task_id: str) -> Committed | None:
    row = conn.execute(select(_RESULTS).where(_RESULTS.c.task_id == task_id)).first()
    if row is None:
        return None
    stats = dict(row.stats or {})
    race = stats.get("race") or {}
    outcome = ProofOutcome(
        Verdict(row.verdict),
        reason=row.reason or "",
        counterexample=row.counterexample,
        bound=row.bound,
        backend=row.backend,
        strategy=row.strategy,
        elapsed_s=row.elapsed_s or 0.0,
        stats=stats,
        confirmed_by=stats.get("confirmed_by"),
        proof=stats.get("proof"),
    )
    return Committed(race.get("leg"), race.get("label") or "race", outcome)


def _source(rows: list[Row[Any]], leg: int | None, number: int, agent: str) -> tuple[int, str]:
    """The attempt number and agent whose outcome is committed (this one unless another
    leg's outcome is the most informative)."""
    for row in reversed(rows):
        if (
            leg is not None
            and _index(row) == leg
            and row.number != number
            and row.ended_at is not None
            and row.outcome not in AGAIN | {CANCELLED}
        ):
            return row.number, row.agent
    return number, agent


def _losers(
    conn: Connection,
    task_id: str,
    plan: list[Leg],
    rows: list[Row[Any]],
    winner: Leg,
    now: datetime,
) -> tuple[list[LegRef], list[Leg]]:
    """The legs to stop after ``winner`` won: those running (revoked by the caller) and those
    that never started (recorded CANCELLED here)."""
    running = [
        LegRef(r.number, _index(r) or 0, r.leg.get("label", "?"), r.agent, r.leg.get("celery_id"))
        for r in rows
        if r.ended_at is None and _index(r) != winner.index
    ]
    spoken = {_index(r) for r in rows if r.ended_at is None or r.outcome not in AGAIN}
    not_started = [leg for leg in plan if leg.index != winner.index and leg.index not in spoken]
    why = f"cancelled before it started: {winner.label} won"
    for leg in not_started:
        _insert(conn, task_id, leg, NOT_STARTED, None, now, ended=True, error=why)
    return running, not_started


def _retract(conn: Connection, task_id: str, outcome: ProofOutcome, now: datetime) -> None:
    """Replace the committed verdict by the contradiction's ERROR (the row stays the one
    result of the task; what it said is kept in its stats)."""
    old = conn.execute(select(_RESULTS).where(_RESULTS.c.task_id == task_id)).one()
    stats = {
        **outcome.stats,
        "retracted": {
            "verdict": old.verdict,
            "reason": old.reason,
            "counterexample": old.counterexample,
            "backend": old.backend,
            "agent": old.agent,
            "race": (old.stats or {}).get("race"),
            "confirmed_by": (old.stats or {}).get("confirmed_by"),
            "at": now.isoformat(),
        },
    }
    conn.execute(
        update(_RESULTS)
        .where(_RESULTS.c.task_id == task_id)
        .values(
            verdict=outcome.verdict.value,
            reason=outcome.reason,
            counterexample=None,
            bound=None,
            backend=outcome.backend,
            stats=stats,
        )
    )
    conn.execute(
        update(_TASKS)
        .where(_TASKS.c.id == task_id)
        .values(verdict=outcome.verdict.value, updated_at=now)
    )


def _insert(
    conn: Connection,
    task_id: str,
    leg: Leg,
    agent: str,
    pid: int | None,
    now: datetime,
    *,
    ended: bool = False,
    error: str | None = None,
) -> int:
    next_number = (
        select(func.coalesce(func.max(_ATTEMPTS.c.number), 0) + 1)
        .where(_ATTEMPTS.c.task_id == task_id)
        .scalar_subquery()
    )
    return conn.execute(
        insert(_ATTEMPTS)
        .values(
            task_id=task_id,
            number=next_number,
            agent=agent,
            pid=pid,
            started_at=now,
            ended_at=now if ended else None,
            outcome=CANCELLED if ended else None,
            error=error,
            leg=_leg_json(leg),
        )
        .returning(_ATTEMPTS.c.number)
    ).scalar_one()


def _not_run(conn: Connection, task_id: str) -> str:
    committed = _committed(conn, task_id)
    if committed is None:
        return "not run: the task is already final"
    return f"not run: the race was decided ({committed.label}: {committed.outcome.verdict.value})"


def _close(
    conn: Connection, task_id: str, number: int, outcome: str, now: datetime, why: str
) -> None:
    conn.execute(
        update(_ATTEMPTS)
        .where(_ATTEMPTS.c.task_id == task_id, _ATTEMPTS.c.number == number)
        .values(ended_at=now, outcome=outcome, error=why)
    )


def _leg_json(leg: Leg) -> dict[str, Any]:
    """What an attempt says about its leg (the strategy by name; its JSON is in the plan)."""
    return {
        "index": leg.index,
        "label": leg.label,
        "backend": leg.backend,
        "strategy": leg.strategy_name,
        "queue": leg.queue,
        "celery_id": leg.celery_id,
    }
