"""The supervisor sweep: classify every agent, decide recoveries, carry them out.

Beat sends ``hms.supervisor.sweep`` every few seconds to the ``supervisor`` queue (an agent
host also sends one at once when a worker process exits).  A Redis lock makes sure exactly one
sweep runs at a time, even with two beat processes.  Each sweep:

1. reads the agents (store), their heartbeats (Redis, from Celery's worker-heartbeat events)
   and health reports, and classifies each one (:func:`hms_celery.policy.classify`);
2. stores every state change with its reason;
3. re-publishes the in-flight attempts of every FAILED agent from the store at once — a new
   attempt of the same task id (a race leg: that leg again, on its backend's queue); the
   result commit is idempotent, so a zombie finishing late changes nothing;
4. asks the health policy for a RecoveryAction (restart intensity, backoff) and carries out
   the ones that are due: RESTART = a remote-control command that replaces the live worker's
   pool processes,
   RESPAWN = a command to the agent's host, ALERT = an audit event and a log line;
5. keeps GA runs moving (:func:`hms_celery.genetic.runs.resume_stalled`) and starts a run
   for a family whose proofs keep failing (:func:`hms_celery.genetic.runs.check_triggers`);
6. saves the policy's memory (it runs in a different process next time).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hms_celery.agents import registry
from hms_celery.agents.host import new_agent_id, send_host_command
from hms_celery.agents.race.tasks import RACE_QUEUE, republish_leg
from hms_celery.app import app
from hms_celery.errors import InfrastructureError
from hms_celery.healing import breakers
from hms_celery.healing.health import last_round
from hms_celery.healing.heartbeats import HeartbeatStore, redis_client
from hms_celery.policy import (
    ActionKind,
    AgentObservation,
    AgentState,
    BreakerBoard,
    BreakerState,
    RecoveryAction,
    StandardHealthPolicy,
    classify,
    due,
)
from hms_celery.settings import get_settings
from hms_celery.store import repository
from hms_celery.store.db import session_scope
from hms_celery.store.models import SupervisorState, utcnow

log = logging.getLogger(__name__)

SWEEP_TASK = "hms.supervisor.sweep"
LOCK_KEY = "hms:supervisor:lock"
POLICY_KEY = "policy"
ACTOR = "supervisor"
PROVE_TASK = "hms.prove"
#: The Celery task that re-runs a stored task of each kind (``tasks.kind``).
TASK_OF_KIND = {
    "proof": PROVE_TASK,
    "fitness": PROVE_TASK,
    "ga.generation": "hms.ga.generation",
    "ga.score": "hms.ga.score",
}
HEARTBEAT_PERSIST_S = 10.0  # the live beats are in Redis; the store keeps a coarse copy


@app.task(name=SWEEP_TASK, ignore_result=True, acks_late=False)
def sweep_task(reason: str = "beat") -> dict[str, Any]:
    """One supervisor sweep, unless another one holds the lock."""
    client = redis_client()
    lock = client.lock(LOCK_KEY, timeout=60, blocking=False)
    if not lock.acquire(blocking=False):
        return {"skipped": "another sweep holds the lock"}
    try:
        return sweep(client, reason=reason)
    finally:
        with contextlib.suppress(Exception):  # expired: nothing to release
            lock.release()


def sweep(client: Any, *, reason: str = "manual", now: float | None = None) -> dict[str, Any]:
    """Classify, record, requeue and recover; returns a summary (counts and duration)."""
    t0 = time.perf_counter()
    now = time.time() if now is None else now
    settings = get_settings()
    beats_store = HeartbeatStore(client)
    beats = beats_store.all()
    monitor_age = beats_store.monitor_age(now)
    have_heartbeats = monitor_age is not None and monitor_age <= settings.heartbeat_timeout
    round_at = last_round(client)
    memory = _load_memory(settings)
    summary: dict[str, Any] = {"reason": reason, "agents": 0, "transitions": [], "actions": []}
    seen: dict[str, datetime] = {}

    recent = max(settings.restart_window, 600.0)
    working = registry.in_flight_counts()
    for agent in registry.list_agents(include_ended=False, failed_within_s=recent):
        summary["agents"] += 1
        beat = beats.get(agent["id"])
        stored = _epoch(agent.get("last_heartbeat_at"))
        if beat and (stored is None or beat["seen"] - stored >= HEARTBEAT_PERSIST_S):
            seen[agent["id"]] = datetime.fromtimestamp(beat["seen"], UTC)
        state = AgentState(agent["state"])
        if state is not AgentState.FAILED:
            if beat and beat.get("state") == "offline":
                _transition(agent, AgentState.TERMINATED, "worker went offline", summary)
                continue
            if not have_heartbeats:
                continue  # no evidence either way: a dead monitor must not kill every agent
            obs = _observe(agent, beat, round_at, now, working.get(agent["id"], 0))
            new_state, why = classify(
                obs,
                heartbeat_timeout_s=settings.heartbeat_timeout,
                report_timeout_s=settings.report_timeout,
            )
            if new_state is not state:
                _transition(agent, new_state, why, summary)
                state = new_state
        if state is AgentState.FAILED:
            _requeue(agent, summary)
        if state in (AgentState.FAILED, AgentState.DEGRADED):
            _recover(agent, state, memory, now, summary)

    _breakers(client, memory, now, summary)
    _genetic(summary)
    registry.record_heartbeats(seen)
    _save_memory(memory)
    summary["duration_ms"] = round((time.perf_counter() - t0) * 1000, 3)
    return summary


# ----------------------------------------------------------------------------- steps
def _observe(
    agent: dict[str, Any],
    beat: dict[str, Any] | None,
    round_at: float | None,
    now: float,
    tracked_tasks: int | None = None,
) -> AgentObservation:
    report = agent.get("last_report") or {}
    report_at = _epoch(agent.get("last_report_at"))
    started = _epoch(agent.get("started_at"))
    return AgentObservation(
        agent_id=agent["id"],
        state=AgentState(agent["state"]),
        heartbeat_age_s=(now - beat["seen"]) if beat else None,
        report_age_s=(now - report_at) if report_at else None,
        report_status=report.get("status"),
        active_tasks=int(beat.get("active") or 0) if beat else 0,
        process_alive=_process_alive(agent),
        health_check_outstanding=bool(round_at and (report_at is None or round_at > report_at)),
        skills=tuple(agent.get("skills") or ()),
        config=agent.get("config") or {},
        lineage=agent.get("lineage") or agent["id"],
        started_age_s=(now - started) if started else None,
        capacity=(agent.get("config") or {}).get("concurrency"),
        tracked_tasks=tracked_tasks,
    )


def _transition(
    agent: dict[str, Any], state: AgentState, why: str, summary: dict[str, Any]
) -> None:
    if registry.transition(agent["id"], state.value, why):
        summary["transitions"].append({"agent": agent["id"], "to": state.value, "reason": why})
        if state in (AgentState.FAILED, AgentState.DEGRADED):
            _audit("agent." + state.value.lower(), agent["id"], reason=why)


def _requeue(agent: dict[str, Any], summary: dict[str, Any]) -> None:
    """Re-publish every in-flight attempt of a failed agent from the store."""
    settings = get_settings()
    for item in registry.in_flight(agent["id"]):
        repository.abandon_attempt(
            item["task_id"], item["attempt"], f"agent {agent['id']} failed: {agent['state_reason']}"
        )
        if item["queue"] == RACE_QUEUE:  # a race leg goes back to its own backend's queue
            if republish_leg(item["task_id"], lost := item["attempt"]):
                _audit("task.requeued", item["task_id"], agent=agent["id"], lost_attempt=lost)
                summary["actions"].append({"kind": "REQUEUE", "task": item["task_id"]})
            continue
        name = TASK_OF_KIND.get(item["kind"], PROVE_TASK)
        options: dict[str, Any] = {}
        if name == PROVE_TASK:
            timeout = (item["payload"] or {}).get("timeout") or settings.prover_timeout
            options = {
                "ignore_result": item["kind"] == "proof",
                "soft_time_limit": timeout + settings.time_limit_margin,
                "time_limit": timeout + 2 * settings.time_limit_margin,
            }
        app.send_task(
            name,
            kwargs=item["payload"],
            task_id=item["task_id"],
            queue=item["queue"],
            routing_key=item["queue"],  # not the task's route's (hms.prove: prove.z3's)
            **options,
        )
        _audit("task.requeued", item["task_id"], agent=agent["id"], lost_attempt=item["attempt"])
        summary["actions"].append({"kind": "REQUEUE", "task": item["task_id"]})


def _genetic(summary: dict[str, Any]) -> None:
    """Keep GA runs moving and start the runs failing families call for."""
    from hms_celery.genetic import runs

    for step in (runs.resume_stalled, runs.check_triggers):
        try:
            summary["actions"].extend(step())
        except InfrastructureError:
            raise
        except Exception:  # one broken GA step must not stop the health sweep
            log.exception("supervisor: %s failed", step.__name__)


def _recover(
    agent: dict[str, Any],
    state: AgentState,
    memory: SweepMemory,
    now: float,
    summary: dict[str, Any],
) -> None:
    pending = memory.pending.get(agent["id"])
    if pending is None:
        if agent["id"] in memory.handled:
            return
        obs = _observe(agent, None, None, now)
        action = memory.policy.decide(obs, state, now)
        if action.kind is ActionKind.IGNORE:
            return
        memory.pending[agent["id"]] = action
        pending = action
    if not due(pending, now):
        return
    del memory.pending[agent["id"]]
    memory.handled.add(agent["id"])
    _carry_out(agent, pending, memory, now, summary)


def _carry_out(
    agent: dict[str, Any],
    action: RecoveryAction,
    memory: SweepMemory,
    now: float,
    summary: dict[str, Any],
) -> None:
    details: dict[str, Any] = {"reason": action.reason, "lineage": action.lineage}
    if action.kind is ActionKind.RESTART:
        app.control.broadcast("hms_restart_pool", destination=[agent["id"]], reply=False)
        memory.handled.discard(agent["id"])  # a restarted agent may degrade again
    elif action.kind is ActionKind.RESPAWN:
        host = registry.get_host(agent["host_id"]) if agent.get("host_id") else None
        if host is None:
            action = RecoveryAction(
                ActionKind.ALERT,
                agent["id"],
                f"{action.reason}; no agent host owns {agent['id']}, cannot respawn",
                lineage=action.lineage,
            )
        else:
            new_id = new_agent_id(agent.get("skills") or [])
            send_host_command(
                host["id"],
                {
                    "op": "respawn",
                    "agent_id": agent["id"],
                    "new_agent_id": new_id,
                    "config_changes": action.config_changes,
                },
            )
            details.update(new_agent=new_id, host=host["id"], config_changes=action.config_changes)
    if action.kind is ActionKind.ALERT:
        log.error("ALERT agent %s: %s", agent["id"], action.reason)
        details["escalated"] = action.escalated
    memory.policy.record(action, now)
    _audit("recovery." + action.kind.value.lower(), agent["id"], **details)
    summary["actions"].append({"kind": action.kind.value, "agent": agent["id"], **details})


def _breakers(client: Any, memory: SweepMemory, now: float, summary: dict[str, Any]) -> None:
    """Feed task outcomes to the breakers; stop or resume routing to agents accordingly."""
    changes = breakers.apply(memory.breakers, breakers.drain(client), now)
    for key, (before, after) in changes.items():
        kind, _, name = key.partition(":")
        if kind == "agent":
            agent = registry.get_agent(name)
            queues = [q for q in (agent or {}).get("queues", []) if not q.startswith("hms.health")]
            for queue in queues:
                if after is BreakerState.OPEN:
                    app.control.cancel_consumer(queue, destination=[name], reply=False)
                elif before is BreakerState.OPEN:  # half-open trial or closed: route again
                    app.control.add_consumer(queue, destination=[name], reply=False)
        _audit(f"breaker.{after.value.lower()}", key, before=before.value)
        summary["actions"].append({"kind": "BREAKER", "key": key, "state": after.value})
    summary["open_breakers"] = breakers.publish_open(client, memory.breakers, now)


# ----------------------------------------------------------------------------- helpers
def _process_alive(agent: dict[str, Any]) -> bool | None:
    """Whether the agent's process exists, when it runs on this machine."""
    import socket

    pid = agent.get("pid")
    if not pid or agent.get("host") != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _epoch(value: str | None) -> float | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _audit(action: str, subject: str, **details: Any) -> None:
    with session_scope() as session:
        repository.audit(session, ACTOR, action, subject, **details)


@dataclass
class SweepMemory:
    """What the supervisor remembers between sweeps (they run in different processes)."""

    policy: StandardHealthPolicy
    pending: dict[str, RecoveryAction] = field(default_factory=dict)  # decided, not yet due
    handled: set[str] = field(default_factory=set)  # agents whose recovery was carried out
    breakers: BreakerBoard = field(default_factory=BreakerBoard)


def _load_memory(settings: Any) -> SweepMemory:
    params = {
        "max_restarts": settings.restart_max,
        "window_s": settings.restart_window,
        "backoff_base_s": settings.restart_backoff,
        "backoff_max_s": settings.restart_backoff_max,
    }
    with session_scope() as session:
        row = session.get(SupervisorState, POLICY_KEY)
        data = row.value if row else None
    board = BreakerBoard(settings.breaker_threshold, settings.breaker_cooldown)
    if not data:
        return SweepMemory(StandardHealthPolicy(**params), breakers=board)
    if data.get("breakers"):
        board = BreakerBoard.from_json(data["breakers"])
        board.threshold = settings.breaker_threshold
        board.cooldown_s = settings.breaker_cooldown
    return SweepMemory(
        StandardHealthPolicy.from_json(data["policy"], **params),
        {k: RecoveryAction.from_json(v) for k, v in data.get("pending", {}).items()},
        set(data.get("handled", [])),
        board,
    )


def _save_memory(memory: SweepMemory) -> None:
    data = {
        "policy": memory.policy.to_json(),
        "pending": {k: v.to_json() for k, v in memory.pending.items()},
        "handled": sorted(memory.handled)[-5000:],
        "breakers": memory.breakers.to_json(),
    }
    with session_scope() as session:
        row = session.get(SupervisorState, POLICY_KEY)
        if row is None:
            session.add(SupervisorState(key=POLICY_KEY, value=data, updated_at=utcnow()))
        else:
            row.value = data
            row.updated_at = utcnow()
