"""The agent registry in the store: agents, their state transitions and the agent hosts.

Agents register themselves (worker signals, :mod:`hms_celery.agents.lifecycle`); the
supervisor sweep moves them between states; every transition is stored with its reason.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    false,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from hms_celery.policy.health import AgentState
from hms_celery.store.db import connection_scope, session_scope
from hms_celery.store.models import (
    Agent,
    AgentHost,
    AgentTransition,
    Attempt,
    Task,
    TaskStatus,
    utcnow,
)

# Declarative `__table__` is typed as FromClause; for these models it is a Table.
_AGENTS = cast(Table, Agent.__table__)
_TRANSITIONS = cast(Table, AgentTransition.__table__)
_HOSTS = cast(Table, AgentHost.__table__)

# The states are the policy's (StrEnum values compare equal to the stored strings).
INITIALIZING = AgentState.INITIALIZING
READY = AgentState.READY
BUSY = AgentState.BUSY
DEGRADED = AgentState.DEGRADED
FAILED = AgentState.FAILED
TERMINATED = AgentState.TERMINATED
ENDED = frozenset({FAILED, TERMINATED})


def register_agent(
    agent_id: str,
    *,
    host: str,
    pid: int | None,
    skills: list[str],
    queues: list[str],
    config: dict[str, Any],
    version: str,
    lineage: str | None = None,
    host_id: str | None = None,
    state: str = INITIALIZING,
    reason: str = "",
    stack: str | None = None,
) -> None:
    """Create or refresh the agent's row and record the transition into ``state``.

    ``stack`` is the agent's :attr:`~hms_celery.settings.Settings.stack_id`."""
    now = utcnow()
    values = {
        "stack": stack,
        "host": host,
        "pid": pid,
        "skills": skills,
        "queues": queues,
        "config": config,
        "version": version,
        "host_id": host_id,
        "updated_at": now,
    }
    with connection_scope() as conn:
        previous = conn.execute(
            select(_AGENTS.c.state).where(_AGENTS.c.id == agent_id)
        ).scalar_one_or_none()
        if previous is None:
            conn.execute(
                insert(_AGENTS).values(
                    id=agent_id,
                    lineage=lineage or agent_id,
                    state=state,
                    state_reason=reason,
                    started_at=now,
                    **values,
                )
            )
        else:
            if state == READY:  # the heartbeat grace counts from here
                values["started_at"] = now
            conn.execute(
                update(_AGENTS)
                .where(_AGENTS.c.id == agent_id)
                .values(state=state, state_reason=reason, **values)
            )
        if previous != state:
            conn.execute(
                insert(_TRANSITIONS).values(
                    agent_id=agent_id, from_state=previous, to_state=state, reason=reason, at=now
                )
            )


def transition(agent_id: str, to_state: str, reason: str) -> bool:
    """Move an agent to ``to_state`` (recording why); False if it was already there or ended.

    An agent that is TERMINATED stays so; FAILED can only become TERMINATED.
    """
    now = utcnow()
    with connection_scope() as conn:
        current = conn.execute(
            select(_AGENTS.c.state).where(_AGENTS.c.id == agent_id).with_for_update()
        ).scalar_one_or_none()
        if current is None or current in (to_state, TERMINATED):
            return False
        if current == FAILED and to_state != TERMINATED:
            return False
        conn.execute(
            update(_AGENTS)
            .where(_AGENTS.c.id == agent_id)
            .values(state=to_state, state_reason=reason, updated_at=now)
        )
        conn.execute(
            insert(_TRANSITIONS).values(
                agent_id=agent_id, from_state=current, to_state=to_state, reason=reason, at=now
            )
        )
        return True


def record_report(agent_id: str, report: dict[str, Any]) -> None:
    """Store an agent's latest health report."""
    with connection_scope() as conn:
        conn.execute(
            update(_AGENTS)
            .where(_AGENTS.c.id == agent_id)
            .values(last_report=report, last_report_at=utcnow())
        )


def record_heartbeats(seen: dict[str, datetime], stack: str | None = None) -> None:
    """Batch-update ``last_heartbeat_at`` (one statement for all agents; ``stack``: only that
    stack's rows)."""
    if not seen:
        return
    # In id order: another batch writer that also locks in id order cannot deadlock.
    rows = [(agent_id, seen[agent_id]) for agent_id in sorted(seen)]
    with connection_scope() as conn:
        if conn.dialect.name == "postgresql":
            # One statement with two array parameters: psycopg2's executemany makes a round
            # trip per row, and a VALUES list of thousands of rows costs more to compile
            # than to run.  A coarse copy: no need to wait for the commit's WAL flush.
            conn.execute(text("SET LOCAL synchronous_commit = off"))
            conn.execute(
                _PG_HEARTBEATS,
                {
                    "ids": [agent_id for agent_id, _ in rows],
                    "seen": [at for _, at in rows],
                    "stack": stack,
                },
            )
            return
        query = update(_AGENTS).where(_AGENTS.c.id == bindparam("agent_id"))
        if stack is not None:
            query = query.where(_AGENTS.c.stack == stack)
        conn.execute(
            query.values(last_heartbeat_at=bindparam("seen_at")),
            [{"agent_id": agent_id, "seen_at": at} for agent_id, at in rows],
        )


_PG_HEARTBEATS = text(
    "UPDATE agents SET last_heartbeat_at = b.seen_at "
    "FROM unnest(CAST(:ids AS text[]), CAST(:seen AS timestamptz[])) AS b(agent_id, seen_at) "
    "WHERE agents.id = b.agent_id AND (CAST(:stack AS text) IS NULL OR agents.stack = :stack)"
)


def list_agents(
    include_ended: bool = True, failed_within_s: float | None = None, stack: str | None = None
) -> list[dict[str, Any]]:
    """Every agent as JSON-ready data, newest first.

    ``include_ended=False`` leaves out TERMINATED and FAILED agents, except — with
    ``failed_within_s`` — those that failed that recently (the sweep still has to recover them).
    ``stack`` keeps only the agents of that stack (a supervisor's own).
    """
    query = select(_AGENTS).order_by(_AGENTS.c.started_at.desc())
    if stack is not None:
        query = query.where(_AGENTS.c.stack == stack)
    if not include_ended:
        live: ColumnElement[bool] = _AGENTS.c.state.not_in(ENDED)
        if failed_within_s is not None:
            since = utcnow() - timedelta(seconds=failed_within_s)
            live = or_(live, and_(_AGENTS.c.state == FAILED, _AGENTS.c.updated_at >= since))
        query = query.where(live)
    with connection_scope() as conn:  # Core rows: a sweep over 1,000 agents reads them all
        return [_agent_json(row) for row in conn.execute(query)]


def sweep_candidates(
    stack: str,
    *,
    ids: list[str],
    changed_since: datetime,
    failed_since: datetime,
    beat_before: datetime,
    report_before: datetime,
    round_at: datetime | None,
    local_host: str,
) -> list[dict[str, Any]]:
    """The agents of ``stack`` a sweep must look at — a superset of those whose state may
    change now — in one query whose result follows what changed, not the number of agents:

    * ``ids`` (stale or changed heartbeats), rows changed since ``changed_since``;
    * INITIALIZING and DEGRADED agents, and those FAILED since ``failed_since``;
    * live agents whose report says Failed or Degraded, whose stored heartbeat copy is
      missing or older than ``beat_before`` (their beat may have vanished from Redis), whose
      health check of ``round_at`` is unanswered since ``report_before`` (wedged), or that
      run on ``local_host`` (their process is probed).
    """
    a = _AGENTS.c
    live = a.state.not_in(ENDED)
    status = a.last_report["status"].as_string()
    wedged: ColumnElement[bool] = false()
    if round_at is not None:
        wedged = and_(
            or_(a.last_report_at.is_(None), a.last_report_at <= round_at),
            func.coalesce(a.last_report_at, a.started_at) < report_before,
        )
    query = select(_AGENTS).where(
        a.stack == stack,
        or_(
            a.state.in_((INITIALIZING, DEGRADED)),
            and_(a.state == FAILED, a.updated_at >= failed_since),
            and_(
                live,
                or_(
                    a.id.in_(ids) if ids else false(),
                    a.updated_at >= changed_since,
                    status.in_(("Failed", "Degraded")),
                    a.last_heartbeat_at.is_(None),
                    a.last_heartbeat_at < beat_before,
                    wedged,
                    and_(a.host == local_host, a.pid.is_not(None)),
                ),
            ),
        ),
    )
    with connection_scope() as conn:
        return [_agent_json(row) for row in conn.execute(query.order_by(a.started_at.desc()))]


def get_agent(agent_id: str) -> dict[str, Any] | None:
    with session_scope() as session:
        agent = session.get(Agent, agent_id)
        return _agent_json(agent) if agent else None


def registered(agent_ids: list[str]) -> set[str]:
    """Which of ``agent_ids`` are registered, in any state (a host registers a new agent
    before it starts the worker)."""
    if not agent_ids:
        return set()
    with connection_scope() as conn:
        query = select(_AGENTS.c.id).where(_AGENTS.c.id.in_(agent_ids))
        return {row.id for row in conn.execute(query)}


def alive_agent_skills(stack: str | None = None) -> dict[str, list[list[str]]]:
    """The skills of each agent whose heartbeats arrive (READY, BUSY, DEGRADED), by host id."""
    a = _AGENTS.c
    query = select(a.host_id, a.skills).where(
        a.state.in_((READY, BUSY, DEGRADED)), a.host_id.is_not(None)
    )
    if stack is not None:
        query = query.where(a.stack == stack)
    found: dict[str, list[list[str]]] = {}
    with connection_scope() as conn:
        for row in conn.execute(query):
            found.setdefault(row.host_id, []).append(list(row.skills or ()))
    return found


def transitions(agent_id: str) -> list[dict[str, Any]]:
    """The agent's state history, oldest first."""
    with session_scope() as session:
        rows = session.scalars(
            select(AgentTransition)
            .where(AgentTransition.agent_id == agent_id)
            .order_by(AgentTransition.id)
        )
        return [
            {"from": r.from_state, "to": r.to_state, "reason": r.reason, "at": r.at.isoformat()}
            for r in rows
        ]


# An attempt still running a task that has no result yet.
_OPEN = and_(Attempt.ended_at.is_(None), Task.status.not_in(TaskStatus.FINAL))


def in_flight(agent_id: str) -> list[dict[str, Any]]:
    """Open attempts of ``agent_id`` whose task has no result yet (what a failure strands)."""
    with session_scope() as session:
        rows = session.execute(
            select(Attempt.task_id, Attempt.number, Task.kind, Task.queue, Task.payload)
            .join(Task, Task.id == Attempt.task_id)
            .where(and_(Attempt.agent == agent_id, _OPEN))
        )
        return [
            {
                "task_id": r.task_id,
                "attempt": r.number,
                "kind": r.kind,
                "queue": r.queue,
                "payload": r.payload,
            }
            for r in rows
        ]


def in_flight_counts() -> dict[str, int]:
    """Per agent, how many tasks it is running with an open attempt (agents with none omitted)."""
    with session_scope() as session:
        rows = session.execute(
            select(Attempt.agent, func.count())
            .join(Task, Task.id == Attempt.task_id)
            .where(_OPEN)
            .group_by(Attempt.agent)
        )
        return {agent: count for agent, count in rows if agent}


# ----------------------------------------------------------------------------- hosts
def register_host(host_id: str, *, hostname: str, pid: int, queue: str) -> None:
    now = utcnow()
    with connection_scope() as conn:
        conn.execute(_HOSTS.delete().where(_HOSTS.c.id == host_id))
        conn.execute(
            insert(_HOSTS).values(
                id=host_id,
                hostname=hostname,
                pid=pid,
                queue=queue,
                started_at=now,
                last_seen_at=now,
            )
        )


def host_seen(host_id: str) -> None:
    with connection_scope() as conn:
        conn.execute(update(_HOSTS).where(_HOSTS.c.id == host_id).values(last_seen_at=utcnow()))


def stop_host(host_id: str) -> None:
    with connection_scope() as conn:
        conn.execute(update(_HOSTS).where(_HOSTS.c.id == host_id).values(stopped_at=utcnow()))


def live_hosts(max_age_s: float = 15.0) -> list[dict[str, Any]]:
    """Agent hosts that are running and were seen recently, newest first."""
    with session_scope() as session:
        rows = list(
            session.scalars(
                select(AgentHost)
                .where(AgentHost.stopped_at.is_(None))
                .order_by(AgentHost.last_seen_at.desc())
            )
        )
        now = utcnow()
        return [
            {"id": h.id, "hostname": h.hostname, "pid": h.pid, "queue": h.queue}
            for h in rows
            if _age(now, h.last_seen_at) <= max_age_s
        ]


def get_host(host_id: str) -> dict[str, Any] | None:
    with session_scope() as session:
        h = session.get(AgentHost, host_id)
        if h is None:
            return None
        return {"id": h.id, "hostname": h.hostname, "pid": h.pid, "queue": h.queue}


def _age(now: datetime, then: datetime) -> float:
    return (now - then).total_seconds()  # both aware (UTCDateTime)


def _agent_json(a: Any) -> dict[str, Any]:
    """An agent (ORM object or Core row) as JSON-ready data."""
    return {
        "id": a.id,
        "lineage": a.lineage,
        "host": a.host,
        "host_id": a.host_id,
        "stack": a.stack,
        "pid": a.pid,
        "skills": a.skills,
        "queues": a.queues,
        "config": a.config,
        "version": a.version,
        "state": a.state,
        "state_reason": a.state_reason,
        "started_at": a.started_at.isoformat(),
        "updated_at": a.updated_at.isoformat(),
        "last_heartbeat_at": a.last_heartbeat_at.isoformat() if a.last_heartbeat_at else None,
        "last_report": a.last_report,
        "last_report_at": a.last_report_at.isoformat() if a.last_report_at else None,
    }
