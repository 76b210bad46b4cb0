"""The sweep's decisions, pure: what was observed + the policy's memory → the steps to take.

No I/O and no clock: :func:`decide_agent` reads an :class:`Observations` (gathered by
:mod:`hms_celery.healing.observe`) and the :class:`SweepMemory`, and returns the steps for
one agent, in the order they must be carried out — a state change, the requeue of the
attempts a failed agent strands, the recovery action that is due.  The supervisor carries
them out through a :class:`~hms_celery.healing.control.ControlPlane`; unit tests do so with
the stub one.  The memory (pending and handled recoveries) is updated here, as the decision
is taken; the policy's restart record is updated when an action is carried out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hms_celery.healing.heartbeats import OFFLINE
from hms_celery.healing.respawns import RespawnLedger
from hms_celery.policy import (
    ActionKind,
    AgentObservation,
    AgentState,
    BreakerBoard,
    RecoveryAction,
    StandardHealthPolicy,
    classify,
    due,
)


@dataclass
class SweepMemory:
    """What the supervisor remembers between sweeps (they run in different processes)."""

    policy: StandardHealthPolicy
    pending: dict[str, RecoveryAction] = field(default_factory=dict)  # decided, not yet due
    handled: set[str] = field(default_factory=set)  # agents whose recovery was carried out
    breakers: BreakerBoard = field(default_factory=BreakerBoard)
    respawns: RespawnLedger = field(default_factory=RespawnLedger)  # sent, not yet seen done


@dataclass(frozen=True)
class Observations:
    """What one sweep saw.  ``agents`` are registry rows (``registry._agent_json``): every
    agent whose state may change now, perhaps more.  ``beats`` are their heartbeats,
    ``working`` their open attempts (from the store), ``alive`` whether their process exists
    (None: not on this machine), ``round_at`` the last health round (epoch seconds)."""

    now: float
    agents: list[dict[str, Any]]
    beats: dict[str, dict[str, Any]] = field(default_factory=dict)
    working: dict[str, int] = field(default_factory=dict)
    alive: dict[str, bool | None] = field(default_factory=dict)
    round_at: float | None = None
    have_heartbeats: bool = True  # the monitor is fresh: a missing beat is evidence
    heartbeat_timeout_s: float = 6.0
    report_timeout_s: float = 10.0


@dataclass(frozen=True)
class Transition:
    """Store ``agent``'s new state with the reason."""

    agent: dict[str, Any]
    state: AgentState
    reason: str


@dataclass(frozen=True)
class Requeue:
    """Re-publish the in-flight attempts of the failed ``agent``."""

    agent: dict[str, Any]


@dataclass(frozen=True)
class Recover:
    """Carry out ``action`` (due now) about ``agent``, policy permitting."""

    agent: dict[str, Any]
    action: RecoveryAction


Step = Transition | Requeue | Recover


def decide_agent(agent: dict[str, Any], obs: Observations, memory: SweepMemory) -> list[Step]:
    """The steps for one agent, in order (may update ``memory.pending``/``handled``)."""
    steps: list[Step] = []
    agent_id = agent["id"]
    beat = obs.beats.get(agent_id)
    state = AgentState(agent["state"])
    if state is not AgentState.FAILED:
        if beat and beat.get("state") == OFFLINE:
            return [Transition(agent, AgentState.TERMINATED, "worker went offline")]
        if not obs.have_heartbeats:
            return []  # no evidence either way: a dead monitor must not kill every agent
        seen = observe_agent(
            agent,
            beat,
            obs.round_at,
            obs.now,
            obs.working.get(agent_id, 0),
            obs.alive.get(agent_id),
        )
        new_state, why = classify(
            seen,
            heartbeat_timeout_s=obs.heartbeat_timeout_s,
            report_timeout_s=obs.report_timeout_s,
        )
        if new_state is not state:
            steps.append(Transition(agent, new_state, why))
            agent = {**agent, "state": new_state.value, "state_reason": why}
            state = new_state
    if state is AgentState.FAILED and obs.working.get(agent_id, 0) > 0:
        steps.append(Requeue(agent))  # none open: nothing stranded (or requeued already)
    if state in (AgentState.FAILED, AgentState.DEGRADED):
        action = _due_recovery(agent, state, memory, obs.now)
        if action is not None:
            steps.append(Recover(agent, action))
    return steps


def _due_recovery(
    agent: dict[str, Any], state: AgentState, memory: SweepMemory, now: float
) -> RecoveryAction | None:
    """The recovery to carry out now: decided once per failure, kept pending until its
    backoff is over, then handed out once."""
    agent_id = agent["id"]
    pending = memory.pending.get(agent_id)
    if pending is None:
        if agent_id in memory.handled:
            return None
        action = memory.policy.decide(observe_agent(agent, None, None, now), state, now)
        if action.kind is ActionKind.IGNORE:
            return None
        memory.pending[agent_id] = pending = action
    if not due(pending, now):
        return None
    del memory.pending[agent_id]
    memory.handled.add(agent_id)
    return pending


def observe_agent(
    agent: dict[str, Any],
    beat: dict[str, Any] | None,
    round_at: float | None,
    now: float,
    tracked_tasks: int | None = None,
    process_alive: bool | None = None,
) -> AgentObservation:
    """The policy's view of one agent from its registry row and heartbeat."""
    report = agent.get("last_report") or {}
    report_at = epoch(agent.get("last_report_at"))
    started = epoch(agent.get("started_at"))
    config = agent.get("config") or {}
    return AgentObservation(
        agent_id=agent["id"],
        state=AgentState(agent["state"]),
        heartbeat_age_s=(now - beat["seen"]) if beat else None,
        report_age_s=(now - report_at) if report_at else None,
        report_status=report.get("status"),
        active_tasks=int(beat.get("active") or 0) if beat else 0,
        process_alive=process_alive,
        health_check_outstanding=bool(round_at and (report_at is None or round_at > report_at)),
        skills=tuple(agent.get("skills") or ()),
        config=config,
        lineage=agent.get("lineage") or agent["id"],
        started_age_s=(now - started) if started else None,
        capacity=config.get("concurrency"),
        tracked_tasks=tracked_tasks,
    )


def epoch(value: str | None) -> float | None:
    """Epoch seconds of an ISO timestamp from the registry (naive: UTC)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
