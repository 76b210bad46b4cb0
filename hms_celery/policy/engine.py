"""The policy engine: one check in front of every agent action.

Every site that spawns, stops, restarts or respawns an agent, requeues a task, moves a
circuit breaker, starts or resumes a GA run or promotes a strategy first calls
:func:`authorize` with an :class:`ActionRequest`.  The answer is a :class:`Decision` —
ALLOW, DENY or APPROVAL (parked until a person decides, see :mod:`hms_celery.policy.approvals`)
— naming the rule that decided it.  The decision is written to the audit log
(``policy.decision``: the action's ``kind``, ``outcome``, ``rule``, ``reason``, ``also``,
``request``) before :func:`authorize` returns, so it always precedes the action's
own audit event.  :data:`ACTION_EVENTS` names every audit event that records an action, and
which decided action kinds may precede it: the coverage test holds the log to it.

:func:`evaluate` is the pure part (rules + request + facts → decision,
:mod:`~hms_celery.policy.decision`); the rules file in force is read by
:mod:`~hms_celery.policy.policy_file`; :func:`authorize` gathers the facts from the store,
evaluates, and records.  The names of those two modules are re-exported here.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from hms_celery.errors import InfrastructureError
from hms_celery.policy import rules as R
from hms_celery.policy.decision import (
    AUTO_PROMOTE_OFF,
    ActionRequest,
    ApprovalPending,
    Decision,
    Facts,
    Outcome,
    PolicyDenied,
    evaluate,
)
from hms_celery.policy.policy_file import (
    DEFAULT_POLICY_FILE,
    check_policy,
    current_policy,
    policy_path,
)
from hms_celery.policy.rules import PolicyFileError
from hms_celery.settings import get_settings
from hms_celery.store import approvals as approval_store
from hms_celery.store.audit import audit
from hms_celery.store.db import connection_scope
from hms_celery.store.models import Agent, AuditEvent, utcnow

__all__ = [
    "ACTION_EVENTS",
    "ACTION_PREFIXES",
    "AUTO_PROMOTE_OFF",
    "DECISION_EVENT",
    "DEFAULT_POLICY_FILE",
    "ActionRequest",
    "ApprovalPending",
    "Decision",
    "Facts",
    "Outcome",
    "PolicyDenied",
    "authorize",
    "check_policy",
    "current_policy",
    "evaluate",
    "gather_facts",
    "policy_path",
    "recently_denied",
    "record",
    "require",
]

log = logging.getLogger(__name__)

#: The audit event of every decision.
DECISION_EVENT = "policy.decision"
#: Live agent states (counted by the limits).
_LIVE = ("INITIALIZING", "READY", "BUSY", "DEGRADED")

#: Audit events that record an agent action → the action kinds whose ALLOW may precede them.
#: Any other event whose name starts with one of :data:`ACTION_PREFIXES` is an action nobody
#: declared here, and fails the coverage test.
ACTION_EVENTS: dict[str, tuple[str, ...]] = {
    "agent.spawned": (R.SPAWN, R.RESPAWN),
    "agent.stopped": (R.STOP,),
    "agent.killed": (R.STOP, R.RESPAWN),
    "recovery.restart": (R.RESTART,),
    "recovery.respawn": (R.RESPAWN,),
    "recovery.alert": (R.ALERT,),
    "task.requeued": (R.REQUEUE,),
    "breaker.open": (R.BREAKER_OPEN,),
    "breaker.half_open": (R.BREAKER_HALF_OPEN,),
    "breaker.closed": (R.BREAKER_CLOSE,),
    "ga.run.started": (R.GA_RUN_START,),
    "ga.triggered": (R.GA_RUN_START,),
    "ga.run.resumed": (R.GA_RUN_RESUME,),
    "strategy.promoted": (R.STRATEGY_PROMOTE,),
}
ACTION_PREFIXES = (
    "agent.spawn",
    "agent.stop",
    "agent.kill",
    "recovery.",
    "breaker.",
    "strategy.",
    "task.requeue",
    "ga.run.start",
    "ga.run.resum",
    "ga.trigger",
)


def authorize(request: ActionRequest, *, payload: dict[str, Any] | None = None) -> Decision:
    """Decide ``request`` and record the decision in the audit log before returning.

    ``payload`` is what carrying the action out later needs (required for the actions of
    :data:`~hms_celery.policy.rules.APPROVABLE`): an APPROVAL stores it with a PENDING
    approval in the same transaction as the decision.  A broken rules file denies (fails
    closed), naming the file's problem."""
    try:
        policy = current_policy()
    except PolicyFileError as exc:
        decision = Decision(Outcome.DENY, "policy-file", str(exc))
    else:
        decision = evaluate(policy, request, gather_facts(request))
    if decision.outcome is Outcome.APPROVAL and (
        payload is None or request.kind not in R.APPROVABLE
    ):
        decision = Decision(
            Outcome.DENY, decision.rule, f"{decision.reason}, but {request.kind} cannot wait"
        )
    with connection_scope() as conn:
        if decision.outcome is Outcome.APPROVAL:
            approval_id = approval_store.create(
                conn,
                kind=request.kind,
                subject=request.subject,
                actor=request.actor,
                rule=decision.rule,
                reason=decision.reason,
                details=_jsonable(request.details),
                # the stack: a store shared by stacks must not carry out another's action
                payload={**(payload or {}), "also": list(request.also), "stack": _stack()},
                ttl_s=get_settings().approval_ttl,
            )
            decision = Decision(decision.outcome, decision.rule, decision.reason, approval_id)
        record(conn, request, decision)
    if decision.outcome is not Outcome.ALLOW:
        log.warning(
            "policy %s: %s of %s (rule %s: %s)",
            decision.outcome.value,
            request.kind,
            request.subject,
            decision.rule,
            decision.reason,
        )
    return decision


def record(conn: Any, request: ActionRequest, decision: Decision) -> None:
    """Write the ``policy.decision`` audit event of ``decision`` inside ``conn``."""
    audit(
        conn,
        request.actor,
        DECISION_EVENT,
        request.subject,
        kind=request.kind,
        also=list(request.also),
        request=_jsonable(request.details),
        **decision.to_json(),
    )


def require(request: ActionRequest, *, payload: dict[str, Any] | None = None) -> Decision:
    """:func:`authorize`, raising :class:`PolicyDenied` / :class:`ApprovalPending` unless
    allowed (for actions a user asked for)."""
    decision = authorize(request, payload=payload)
    if decision.outcome is Outcome.DENY:
        raise PolicyDenied(request, decision)
    if decision.outcome is Outcome.APPROVAL:
        raise ApprovalPending(request, decision)
    return decision


def gather_facts(request: ActionRequest) -> Facts:
    """What the limits need for ``request``, from the store (only what its kind needs)."""
    facts = Facts()
    if request.kind in (R.SPAWN, R.RESPAWN):
        concurrency = get_settings().worker_concurrency
        query = select(Agent.id, Agent.host_id, Agent.skills, Agent.config).where(
            Agent.state.in_(_LIVE)
        )
        with connection_scope() as conn:
            facts.agents = [
                {
                    "id": row.id,
                    "host_id": row.host_id,
                    "skills": list(row.skills or ()),
                    "concurrency": (row.config or {}).get("concurrency") or concurrency,
                }
                for row in conn.execute(query)
            ]
    if request.kind in (R.RESTART, R.RESPAWN):
        lineage = request.details.get("lineage") or request.subject
        since = utcnow() - timedelta(hours=1)
        query = select(AuditEvent.details).where(
            AuditEvent.action.in_(("recovery.restart", "recovery.respawn")),
            AuditEvent.at >= since,
        )
        with connection_scope() as conn:
            facts.restarts_last_hour = sum(
                1 for (details,) in conn.execute(query) if (details or {}).get("lineage") == lineage
            )
    return facts


def recently_denied(kind: str, subject: str, within_s: float) -> bool:
    """Was ``kind`` of ``subject`` denied within the last ``within_s`` seconds?  (A trigger
    that fires every sweep asks this instead of being denied every two seconds.)"""
    since = utcnow() - timedelta(seconds=within_s)
    query = (
        select(AuditEvent.details)
        .where(
            AuditEvent.action == DECISION_EVENT,
            AuditEvent.subject == subject,
            AuditEvent.at >= since,
        )
        .order_by(AuditEvent.id.desc())
        .limit(50)
    )
    with connection_scope() as conn:
        return any(
            (d or {}).get("kind") == kind and (d or {}).get("outcome") == Outcome.DENY.value
            for (d,) in conn.execute(query)
        )


def _stack() -> str | None:
    """This process's stack (its broker), where approved actions must be carried out."""
    try:
        return get_settings().stack_id
    except InfrastructureError:  # no broker configured here: any stack may carry it out
        return None


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    """Request details small enough for an audit event (long lists cut to 20 items)."""
    out: dict[str, Any] = {}
    for key, value in details.items():
        if isinstance(value, (list, tuple)):
            out[key] = list(value)[:20]
        elif isinstance(value, (str, int, float, bool)) or value is None:
            out[key] = value
        elif isinstance(value, dict):
            out[key] = {str(k): v for k, v in list(value.items())[:20]}
        else:
            out[key] = str(value)
    return out
