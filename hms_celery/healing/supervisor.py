"""The supervisor sweep: classify every agent, decide recoveries, carry them out.

Beat sends ``hms.supervisor.sweep`` every few seconds to the ``supervisor`` queue (an agent
host also sends one at once when a worker process exits).  A Redis lock makes sure exactly one
sweep runs at a time, even with two beat processes.  Each sweep:

1. reads the agents (store), their heartbeats (Redis, from Celery's worker-heartbeat events)
   and health reports, and classifies each one (:func:`hms_celery.policy.classify`);
2. stores every state change with its reason;
3. re-publishes the in-flight attempts of every FAILED agent from the store at once — a new
   attempt of the same task id (a race leg: that leg again, on its backend's queue); the
   result commit is idempotent, so a zombie finishing late changes nothing (with an AMQP
   broker, RabbitMQ redelivers the unacknowledged message itself: nothing is re-published);
4. asks the health policy for a RecoveryAction (restart intensity, backoff) and carries out
   the ones that are due: RESTART = a remote-control command that replaces the live worker's
   pool processes,
   RESPAWN = a command to the agent's host, ALERT = an audit event and a log line;
5. keeps GA runs moving (:func:`hms_celery.genetic.runs.resume_stalled`) and starts a run
   for a family whose proofs keep failing (:func:`hms_celery.genetic.runs.check_triggers`);
6. carries out the actions people approved (``hms approvals approve``) and drops the pending
   approvals whose ``HMS_APPROVAL_TTL`` has passed;
7. saves the policy's memory (it runs in a different process next time).

Every action — restart, respawn, alert, requeue, breaker change — first passes the policy
engine (:func:`hms_celery.policy.engine.authorize`), which audits its decision.  A denied
restart or respawn becomes an ALERT; one that needs approval is parked.  A denied or parked
requeue keeps the task recorded, unqueued, with the reason as its error; a denied breaker
change leaves the breaker as it was.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psutil

from hms_celery.agents import registry
from hms_celery.agents.host import new_agent_id, send_host_command
from hms_celery.agents.race.tasks import RACE_QUEUE, republish_leg
from hms_celery.app import app
from hms_celery.errors import InfrastructureError
from hms_celery.healing import breakers
from hms_celery.healing.health import last_round
from hms_celery.healing.heartbeats import HeartbeatStore, redis_client
from hms_celery.metrics.sweeps import record_sweep
from hms_celery.policy import (
    ActionKind,
    AgentObservation,
    AgentState,
    BreakerBoard,
    BreakerState,
    RecoveryAction,
    StandardHealthPolicy,
    approvals,
    classify,
    due,
    rules,
)
from hms_celery.policy.engine import ActionRequest, Decision, Outcome, authorize
from hms_celery.policy.engine import record as record_decision
from hms_celery.settings import get_settings, is_amqp_url
from hms_celery.store import repository
from hms_celery.store.approvals import hold_task
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
    # Only this stack's agents: their heartbeats are in this broker, another stack's are not
    # (a store shared by stacks on other broker databases must not make them look dead).
    mine = settings.stack_id
    for agent in registry.list_agents(include_ended=False, failed_within_s=recent, stack=mine):
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
    _approvals(memory, now, summary)
    registry.record_heartbeats(seen)
    _save_memory(memory)
    summary["duration_ms"] = round((time.perf_counter() - t0) * 1000, 3)
    record_sweep(client, summary["duration_ms"] / 1000, time.time())  # for hms_sweep_seconds
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
    """Re-publish every in-flight attempt of a failed agent from the store, policy permitting.

    The attempt is closed as LOST either way (its agent is gone).  A requeue the policy
    denies or parks keeps the task recorded and visible, unqueued (PENDING, the reason as its
    error); an approved one is re-published by a later sweep.

    With an AMQP broker nothing is re-published: RabbitMQ itself returns a message that a
    closed connection had not acknowledged (a dead worker's, at once; a hung one's when its
    process is replaced or its AMQP heartbeat lapses), and a second copy would run the task
    twice.  The attempt is closed and the broker's requeue audited (docs/brokers.md)."""
    broker_requeues = is_amqp_url(get_settings().effective_broker_url)
    for item in registry.in_flight(agent["id"]):
        repository.abandon_attempt(
            item["task_id"], item["attempt"], f"agent {agent['id']} failed: {agent['state_reason']}"
        )
        if broker_requeues:
            _audit(
                "task.requeued",
                item["task_id"],
                agent=agent["id"],
                lost_attempt=item["attempt"],
                by="broker",
            )
            summary["actions"].append({"kind": "REQUEUE", "task": item["task_id"], "by": "broker"})
            continue
        work = {
            "task_id": item["task_id"],
            "attempt": item["attempt"],
            "queue": item["queue"],
            "kind": item["kind"],
            "payload": item["payload"],
            "agent": agent["id"],
        }
        decision = authorize(
            ActionRequest(
                rules.REQUEUE,
                item["task_id"],
                ACTOR,
                {
                    "agent": agent["id"],
                    "queue": item["queue"],
                    "task_kind": item["kind"],
                    "backend": (item["payload"] or {}).get("backend") or "z3",
                    "lost_attempt": item["attempt"],
                },
            ),
            payload=work,
        )
        if decision.allowed:
            _republish(work, summary)
        else:
            _hold(work, decision, summary)


def _hold(work: dict[str, Any], decision: Decision, summary: dict[str, Any]) -> None:
    if decision.outcome is Outcome.APPROVAL:
        why = (
            f"requeue after agent {work['agent']} failed waits for approval "
            f"{decision.approval_id} (rule {decision.rule!r}): not queued meanwhile"
        )
    else:
        why = (
            f"requeue after agent {work['agent']} failed denied by policy rule "
            f"{decision.rule!r}: {decision.reason}; the task is kept, unqueued"
        )
    hold_task(work["task_id"], why)
    summary["actions"].append(
        {"kind": "HOLD", "task": work["task_id"], "outcome": decision.outcome.value}
    )


def _republish(item: dict[str, Any], summary: dict[str, Any]) -> None:
    """Publish a lost attempt's task again (an allowed requeue), audited ``task.requeued``."""
    settings = get_settings()
    agent_id = item["agent"]
    if item["queue"] == RACE_QUEUE:  # a race leg goes back to its own backend's queue
        if republish_leg(item["task_id"], lost := item["attempt"]):
            _audit("task.requeued", item["task_id"], agent=agent_id, lost_attempt=lost)
            summary["actions"].append({"kind": "REQUEUE", "task": item["task_id"]})
        return
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
    _audit("task.requeued", item["task_id"], agent=agent_id, lost_attempt=item["attempt"])
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
    """Ask the policy about ``action`` and carry it out if allowed.

    A denied RESTART/RESPAWN becomes an ALERT naming the rule; one that needs approval is
    parked (the agent stays as it is until a person decides, see :func:`_approvals`)."""
    details: dict[str, Any] = {"reason": action.reason, "lineage": action.lineage}
    if action.kind is ActionKind.RESPAWN:
        host = registry.get_host(agent["host_id"]) if agent.get("host_id") else None
        if host is None:
            action = RecoveryAction(
                ActionKind.ALERT,
                agent["id"],
                f"{action.reason}; no agent host owns {agent['id']}, cannot respawn",
                lineage=action.lineage,
            )
            details["reason"] = action.reason  # the audit says why it is only an alert
        else:
            details.update(
                new_agent=new_agent_id(agent.get("skills") or [], host["hostname"]),
                host=host["id"],
                config_changes=action.config_changes,
            )
    if action.kind is ActionKind.IGNORE:
        return
    request = _recovery_request(agent, action, details)
    payload = {"agent": agent, "action": action.to_json(), "details": details}
    decision = authorize(request, payload=payload if action.kind.is_restart else None)
    if decision.outcome is Outcome.APPROVAL:
        summary["actions"].append(
            {"kind": "PARKED", "agent": agent["id"], "approval": decision.approval_id}
        )
        return
    if not decision.allowed:
        if action.kind is ActionKind.ALERT:  # even the alert is forbidden: the log keeps it
            log.error(
                "ALERT agent %s (not audited: %s): %s", agent["id"], decision.rule, action.reason
            )
            return
        alert = RecoveryAction(
            ActionKind.ALERT,
            agent["id"],
            f"{action.reason}; policy denied {request.kind} (rule {decision.rule!r}: "
            f"{decision.reason})",
            lineage=action.lineage,
        )
        _carry_out(agent, alert, memory, now, summary)
        return
    _perform(agent, action, details, memory, now, summary)


def _recovery_request(
    agent: dict[str, Any], action: RecoveryAction, details: dict[str, Any]
) -> ActionRequest:
    kind = {
        ActionKind.RESTART: rules.RESTART,
        ActionKind.RESPAWN: rules.RESPAWN,
        ActionKind.ALERT: rules.ALERT,
    }[action.kind]
    config = {**(agent.get("config") or {}), **action.config_changes}
    facts = {
        "reason": action.reason,
        "lineage": action.lineage,
        "skills": sorted(agent.get("skills") or []),
        "concurrency": int(config.get("concurrency") or get_settings().worker_concurrency),
        "host": details.get("host") or agent.get("host_id"),
        "config_changes": dict(action.config_changes),
    }
    also = (details["new_agent"],) if details.get("new_agent") else ()
    return ActionRequest(kind, agent["id"], ACTOR, facts, also=also)


def _perform(
    agent: dict[str, Any],
    action: RecoveryAction,
    details: dict[str, Any],
    memory: SweepMemory,
    now: float,
    summary: dict[str, Any],
) -> None:
    """Carry out an allowed recovery action, audited ``recovery.<kind>``."""
    if action.kind is ActionKind.RESTART:
        app.control.broadcast("hms_restart_pool", destination=[agent["id"]], reply=False)
        memory.handled.discard(agent["id"])  # a restarted agent may degrade again
    elif action.kind is ActionKind.RESPAWN:
        send_host_command(
            details["host"],
            {
                "op": "respawn",
                "agent_id": agent["id"],
                "new_agent_id": details["new_agent"],
                "config_changes": action.config_changes,
                "authorized": True,  # this sweep's policy check allowed it
            },
        )
    if action.kind is ActionKind.ALERT:
        log.error("ALERT agent %s: %s", agent["id"], action.reason)
        details["escalated"] = action.escalated
    memory.policy.record(action, now)
    _audit("recovery." + action.kind.value.lower(), agent["id"], **details)
    summary["actions"].append({"kind": action.kind.value, "agent": agent["id"], **details})


#: The policy action of a breaker's change, by its new state.
_BREAKER_ACTIONS = {
    BreakerState.OPEN: rules.BREAKER_OPEN,
    BreakerState.HALF_OPEN: rules.BREAKER_HALF_OPEN,
    BreakerState.CLOSED: rules.BREAKER_CLOSE,
}


def _breakers(client: Any, memory: SweepMemory, now: float, summary: dict[str, Any]) -> None:
    """Feed task outcomes to the breakers; stop or resume routing to agents accordingly.

    Each change passes the policy first; a denied one is undone (the breaker keeps its
    previous state, and routing is left as it was)."""
    board = memory.breakers
    known = board.keys()  # a BreakerBoard is not iterable
    snapshot = {key: copy.deepcopy(board.get(key)) for key in known}
    changes = breakers.apply(board, breakers.drain(client), now)
    for key, (before, after) in changes.items():
        decision = authorize(
            ActionRequest(_BREAKER_ACTIONS[after], key, ACTOR, {"before": before.value})
        )
        if not decision.allowed:
            breakers.restore(board, key, snapshot.get(key))
            summary["actions"].append({"kind": "BREAKER_DENIED", "key": key, "state": after.value})
            continue
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
    summary["open_breakers"] = breakers.publish_open(client, board, now)


def _approvals(memory: SweepMemory, now: float, summary: dict[str, Any]) -> None:
    """Drop the approvals nobody decided in time; carry out the approved ones."""
    for row in approvals.expire_due(ACTOR):
        approvals.dropped(row)
        summary["actions"].append({"kind": "APPROVAL_EXPIRED", "approval": row["id"]})
    for row in approvals.claim_approved(ACTOR, stack=get_settings().stack_id):
        try:
            result = _execute(row, memory, now, summary)
        except InfrastructureError:
            approvals.finish(row["id"], ok=False, result="the broker or the store was down")
            raise
        except Exception as exc:  # one failed action must not stop the sweep
            log.exception("approved action %s failed", row["id"])
            approvals.finish(row["id"], ok=False, result=f"{type(exc).__name__}: {exc}")
        else:
            approvals.finish(row["id"], ok=True, result=result)


def _execute(row: dict[str, Any], memory: SweepMemory, now: float, summary: dict[str, Any]) -> str:
    """Carry out one approved action; its ALLOW (rule ``approval:<id>``) is audited first."""
    kind, payload = row["kind"], row["payload"]
    request = ActionRequest(
        kind,
        row["subject"],
        row["decided_by"] or ACTOR,
        row["details"],
        also=tuple(payload.get("also") or ()),
    )
    decision = Decision(Outcome.ALLOW, f"approval:{row['id']}", f"approved by {row['decided_by']}")
    with session_scope() as session:
        record_decision(session, request, decision)
    summary["actions"].append({"kind": "APPROVED", "approval": row["id"], "action": kind})
    if kind in (rules.RESTART, rules.RESPAWN):
        action = RecoveryAction.from_json(payload["action"])
        agent = payload["agent"]
        memory.pending.pop(agent["id"], None)
        memory.handled.add(agent["id"])
        _perform(agent, action, dict(payload["details"]), memory, now, summary)
        return f"{kind} of {agent['id']} carried out"
    if kind == rules.REQUEUE:
        _republish(payload, summary)
        return f"task {payload['task_id']} re-published on {payload['queue']}"
    if kind == rules.SPAWN:
        send_host_command(
            payload["host"],
            {
                "op": "spawn",
                "skills": payload["skills"],
                "config": payload["config"],
                "agent_id": payload["agent_id"],
                "authorized": True,
            },
        )
        return f"spawn of {payload['agent_id']} sent to host {payload['host']}"
    if kind == rules.STOP:
        op = "kill" if payload.get("forced") else "stop"
        if payload.get("host"):
            send_host_command(
                payload["host"], {"op": op, "agent_id": payload["agent_id"], "authorized": True}
            )
        else:
            app.control.shutdown(destination=[payload["agent_id"]])
            _audit("agent.stopped", payload["agent_id"], approval=row["id"])
        return f"{op} of {payload['agent_id']} sent"
    if kind == rules.GA_RUN_START:
        from hms_celery.genetic import runs

        run_id = runs.start_run(**payload["kwargs"], run_id=payload["run_id"], authorized=True)
        return f"GA run {run_id} started"
    if kind == rules.STRATEGY_PROMOTE:
        from hms_celery.genetic import promotion

        done = promotion.promote(payload["run_id"], actor=request.actor)
        return f"strategy {done['strategy']['name']} promoted for {done['family']}"
    raise ValueError(f"no executor for approved action {kind!r}")


# ----------------------------------------------------------------------------- helpers
def _process_alive(agent: dict[str, Any]) -> bool | None:
    """Whether the agent's process exists, when it runs on this machine."""
    import socket

    pid = agent.get("pid")
    if not pid or agent.get("host") != socket.gethostname():
        return None
    return bool(psutil.pid_exists(pid))


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
