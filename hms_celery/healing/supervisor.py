"""The supervisor sweep: observe the agents, decide recoveries, carry them out.

Beat sends ``hms.supervisor.sweep`` every few seconds to the ``supervisor`` queue (an agent
host also sends one at once when a worker process exits).  A Redis lock makes sure exactly one
sweep runs at a time, even with two beat processes.  Each sweep is three steps:

* **observe** (:mod:`hms_celery.healing.observe`): the agents whose state may change now —
  stale or changed heartbeats, changed rows and reports, unanswered health checks, open
  attempts — not every agent: the cost follows what changed;
* **decide** (:mod:`hms_celery.healing.decide`, pure): per agent, the new state
  (:func:`hms_celery.policy.classify`), the requeue of the in-flight attempts of a FAILED
  agent, the RecoveryAction the health policy asks for once it is due (restart intensity,
  backoff);
* **act**, through a :class:`~hms_celery.healing.control.ControlPlane`
  (:class:`CeleryControlPlane` here): store every state change with its reason; re-publish
  the failed agent's attempts from the store — a new attempt of the same task id (a race leg:
  that leg again, on its backend's queue; with an AMQP broker RabbitMQ redelivers the
  unacknowledged message itself and nothing is re-published); the result commit is
  idempotent, so a zombie finishing late changes nothing; RESTART = a remote-control
  command that replaces the live worker's pool processes, RESPAWN = a command to the agent's
  host (moved once to another live host if the new agent is not registered in time:
  :mod:`hms_celery.healing.respawns`), ALERT = an audit event and a log line.

Then it feeds the circuit breakers, carries out the actions people approved (``hms approvals
approve``), drops the pending approvals whose ``HMS_APPROVAL_TTL`` has passed, stores the
heartbeats' coarse copy and saves the policy's memory (it runs in a different process next
time).  GA runs are kept moving by their own task (``hms.ga.maintain``).

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
from collections.abc import Callable
from typing import Any

from hms_celery.agents import registry
from hms_celery.agents.host import new_agent_id, send_host_command
from hms_celery.agents.race.tasks import RACE_QUEUE, republish_leg
from hms_celery.app import app
from hms_celery.errors import InfrastructureError
from hms_celery.healing import breakers
from hms_celery.healing.control import ControlPlane
from hms_celery.healing.decide import (
    Observations,
    Recover,
    Requeue,
    Step,
    SweepMemory,
    Transition,
    decide_agent,
)
from hms_celery.healing.heartbeats import redis_client
from hms_celery.healing.observe import observe
from hms_celery.healing.respawns import RespawnLedger, follow_up, respawn_wait
from hms_celery.metrics.sweeps import record_sweep
from hms_celery.policy import (
    ActionKind,
    AgentState,
    BreakerBoard,
    BreakerState,
    RecoveryAction,
    StandardHealthPolicy,
    approvals,
    rules,
)
from hms_celery.policy.engine import ActionRequest, Decision, Outcome, authorize
from hms_celery.policy.engine import record as record_decision
from hms_celery.runtime import publish
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
#: Executors of approved actions other packages own, by action kind (``register_approved``).
ApprovedExecutor = Callable[[dict[str, Any], str], str]
_APPROVED: dict[str, ApprovedExecutor] = {}


def register_approved(kind: str) -> Callable[[ApprovedExecutor], ApprovedExecutor]:
    """Register the executor of approved ``kind`` actions — ``fn(payload, actor) -> result``
    — for a package the supervisor must not import (the GA's run start and promotion)."""

    def add(fn: ApprovedExecutor) -> ApprovedExecutor:
        _APPROVED[kind] = fn
        return fn

    return add


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
    """Observe, decide, act; returns a summary (counts and duration).

    ``now`` is the sweep's clock (epoch seconds; default: the time)."""
    t0 = time.perf_counter()
    now = time.time() if now is None else now
    settings = get_settings()
    observed = observe(client, settings, now)
    memory = _load_memory(settings)
    remembered = _memory_json(memory)
    summary: dict[str, Any] = {"reason": reason, "agents": 0, "transitions": [], "actions": []}
    summary["full"] = observed.full
    run_sweep(observed.observations, memory, CeleryControlPlane(), summary)
    _breakers(client, memory, now, summary)
    _approvals(memory, now, summary)
    registry.record_heartbeats(observed.persist, stack=settings.stack_id)
    summary["beats_stored"] = len(observed.persist)
    if _memory_json(memory) != remembered:  # most sweeps change nothing: no write
        _save_memory(memory)
    observed.finish(client)
    summary["duration_ms"] = round((time.perf_counter() - t0) * 1000, 3)
    record_sweep(client, summary["duration_ms"] / 1000, time.time())  # for hms_sweep_seconds
    return summary


def run_sweep(
    obs: Observations, memory: SweepMemory, plane: ControlPlane, summary: dict[str, Any]
) -> None:
    """Decide and act for every observed agent, one agent at a time (a recovery carried out
    counts against the policy's limits before the next agent is decided); then move the
    respawns no host carried out in time (:mod:`hms_celery.healing.respawns`)."""
    for agent in obs.agents:
        summary["agents"] += 1
        act(decide_agent(agent, obs, memory), memory, obs.now, plane, summary)
    for step in follow_up(memory.respawns, obs.now, plane):
        _carry_out(step.agent, step.action, memory, obs.now, summary, plane, elsewhere=step.host)


def act(
    steps: list[Step],
    memory: SweepMemory,
    now: float,
    plane: ControlPlane,
    summary: dict[str, Any],
) -> None:
    """Carry out one agent's steps in order."""
    for step in steps:
        if isinstance(step, Transition):
            _transition(step.agent, step.state, step.reason, summary, plane)
        elif isinstance(step, Requeue):
            plane.requeue(step.agent, summary)
        elif isinstance(step, Recover):
            _carry_out(step.agent, step.action, memory, now, summary, plane)


class CeleryControlPlane:
    """The real :class:`~hms_celery.healing.control.ControlPlane`: the store, Celery remote
    control, the agent hosts, the log and the policy engine."""

    def mark(self, agent_id: str, state: str, reason: str) -> bool:
        return registry.transition(agent_id, state, reason)

    def requeue(self, agent: dict[str, Any], summary: dict[str, Any]) -> None:
        _requeue(agent, summary)

    def restart(self, agent_id: str) -> None:
        app.control.broadcast("hms_restart_pool", destination=[agent_id], reply=False)

    def respawn(self, host_id: str, command: dict[str, Any]) -> None:
        send_host_command(host_id, command)

    def alert(self, agent_id: str, reason: str) -> None:
        log.error("ALERT agent %s: %s", agent_id, reason)

    def audit(self, action: str, subject: str, **details: Any) -> None:
        _audit(action, subject, **details)

    def authorize(self, request: ActionRequest, payload: dict[str, Any] | None = None) -> Decision:
        return authorize(request, payload=payload)

    def host(self, host_id: str) -> dict[str, Any] | None:
        return registry.get_host(host_id)

    def new_agent_id(self, skills: list[str], hostname: str | None = None) -> str:
        return new_agent_id(skills, hostname)

    def registered(self, agent_ids: list[str]) -> set[str]:
        return registry.registered(agent_ids)

    def live_hosts(self) -> list[dict[str, Any]]:
        alive = registry.alive_agent_skills(get_settings().stack_id)
        return [{**h, "agent_skills": alive.get(h["id"], [])} for h in registry.live_hosts()]


# ----------------------------------------------------------------------------- steps
def _transition(
    agent: dict[str, Any],
    state: AgentState,
    why: str,
    summary: dict[str, Any],
    plane: ControlPlane,
) -> None:
    if plane.mark(agent["id"], state.value, why):
        summary["transitions"].append({"agent": agent["id"], "to": state.value, "reason": why})
        if state in (AgentState.FAILED, AgentState.DEGRADED):
            plane.audit("agent." + state.value.lower(), agent["id"], reason=why)


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
        why = f"agent {agent['id']} failed: {agent['state_reason']}"
        if not repository.abandon_attempt(item["task_id"], item["attempt"], why):
            continue  # closed meanwhile (it committed, or another sweep took it): not again
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
    agent_id = item["agent"]
    if item["queue"] == RACE_QUEUE:  # a race leg goes back to its own backend's queue
        if republish_leg(item["task_id"], lost := item["attempt"]):
            _audit("task.requeued", item["task_id"], agent=agent_id, lost_attempt=lost)
            summary["actions"].append({"kind": "REQUEUE", "task": item["task_id"]})
        return
    publish.requeue(item)
    _audit("task.requeued", item["task_id"], agent=agent_id, lost_attempt=item["attempt"])
    summary["actions"].append({"kind": "REQUEUE", "task": item["task_id"]})


def _carry_out(
    agent: dict[str, Any],
    action: RecoveryAction,
    memory: SweepMemory,
    now: float,
    summary: dict[str, Any],
    plane: ControlPlane,
    elsewhere: dict[str, Any] | None = None,
) -> None:
    """Ask the policy about ``action`` and carry it out if allowed.

    A RESPAWN goes to the agent's own host, or to ``elsewhere`` when its own host did not
    carry it out (``moved_from`` in the audit).  A denied RESTART/RESPAWN becomes an ALERT
    naming the rule; one that needs approval is parked (the agent stays as it is until a
    person decides, see :func:`_approvals`)."""
    details: dict[str, Any] = {"reason": action.reason, "lineage": action.lineage}
    if action.kind is ActionKind.RESPAWN:
        host = elsewhere
        if host is not None:
            details["moved_from"] = agent.get("host_id")
        elif agent.get("host_id"):
            host = plane.host(agent["host_id"])
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
                # named after the machine it will run on (the agent's host, or the one it moves to)
                new_agent=plane.new_agent_id(agent.get("skills") or [], host["hostname"]),
                host=host["id"],
                config_changes=action.config_changes,
            )
    if action.kind is ActionKind.IGNORE:
        return
    request = _recovery_request(agent, action, details)
    payload = {"agent": agent, "action": action.to_json(), "details": details}
    decision = plane.authorize(request, payload=payload if action.kind.is_restart else None)
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
        _carry_out(agent, alert, memory, now, summary, plane)
        return
    _perform(agent, action, details, memory, now, summary, plane)


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
    plane: ControlPlane,
) -> None:
    """Carry out an allowed recovery action, audited ``recovery.<kind>``."""
    if action.kind is ActionKind.RESTART:
        plane.restart(agent["id"])
        memory.handled.discard(agent["id"])  # a restarted agent may degrade again
    elif action.kind is ActionKind.RESPAWN:
        sent = memory.respawns.issue(
            agent, action, details["new_agent"], details["host"], now, details.get("moved_from")
        )
        details["expires_at"] = sent.deadline  # a host reading it later must not start it
        plane.respawn(
            details["host"],
            {
                "op": "respawn",
                "agent_id": agent["id"],
                "new_agent_id": details["new_agent"],
                "config_changes": action.config_changes,
                "authorized": True,  # this sweep's policy check allowed it
                "expires_at": sent.deadline,
            },
        )
    if action.kind is ActionKind.ALERT:
        plane.alert(agent["id"], action.reason)
        details["escalated"] = action.escalated
    if "moved_from" not in details:  # a moved respawn was recorded when it was first sent
        memory.policy.record(action, now)
    plane.audit("recovery." + action.kind.value.lower(), agent["id"], **details)
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
    plane = CeleryControlPlane()
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
        _perform(agent, action, dict(payload["details"]), memory, now, summary, plane)
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
    executor = _APPROVED.get(kind)  # the GA's run start and promotion: its own package
    if executor is not None:
        return executor(payload, request.actor)
    raise ValueError(f"no executor for approved action {kind!r}")


# ----------------------------------------------------------------------------- helpers
def _audit(action: str, subject: str, **details: Any) -> None:
    with session_scope() as session:
        repository.audit(session, ACTOR, action, subject, **details)


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
    wait = respawn_wait(settings.heartbeat_timeout)
    if not data:
        return SweepMemory(
            StandardHealthPolicy(**params), breakers=board, respawns=RespawnLedger(wait)
        )
    if data.get("breakers"):
        board = BreakerBoard.from_json(data["breakers"])
        board.threshold = settings.breaker_threshold
        board.cooldown_s = settings.breaker_cooldown
    return SweepMemory(
        StandardHealthPolicy.from_json(data["policy"], **params),
        {k: RecoveryAction.from_json(v) for k, v in data.get("pending", {}).items()},
        set(data.get("handled", [])),
        board,
        RespawnLedger.from_json(data.get("respawns"), wait),
    )


def _memory_json(memory: SweepMemory) -> dict[str, Any]:
    return {
        "policy": memory.policy.to_json(),
        "pending": {k: v.to_json() for k, v in memory.pending.items()},
        "handled": sorted(memory.handled)[-5000:],
        "breakers": memory.breakers.to_json(),
        "respawns": memory.respawns.to_json(),
    }


def _save_memory(memory: SweepMemory) -> None:
    data = _memory_json(memory)
    with session_scope() as session:
        row = session.get(SupervisorState, POLICY_KEY)
        if row is None:
            session.add(SupervisorState(key=POLICY_KEY, value=data, updated_at=utcnow()))
        else:
            row.value = data
            row.updated_at = utcnow()
