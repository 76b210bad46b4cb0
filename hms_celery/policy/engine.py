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

:func:`evaluate` is the pure part (rules + request + facts → decision); :func:`authorize`
gathers the facts from the store, evaluates, and records.
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from celery import signals
from sqlalchemy import select

from hms_celery.errors import InfrastructureError, InputError
from hms_celery.policy import rules as R
from hms_celery.policy.rules import Policy, PolicyFileError, load_policy
from hms_celery.settings import get_settings
from hms_celery.store import approvals as approval_store
from hms_celery.store.db import connection_scope
from hms_celery.store.models import Agent, AuditEvent, utcnow
from hms_celery.store.repository import audit

log = logging.getLogger(__name__)

#: The audit event of every decision.
DECISION_EVENT = "policy.decision"
#: The repository's rules file, used when ``HMS_POLICY_FILE`` is unset.
DEFAULT_POLICY_FILE = Path(__file__).resolve().parents[2] / "config" / "policy.toml"
#: The rule an unset ``HMS_GA_AUTO_PROMOTE`` stands for: promotions wait for a person.
AUTO_PROMOTE_OFF = "HMS_GA_AUTO_PROMOTE=false"
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


class Outcome(StrEnum):
    """What the policy says about one action."""

    ALLOW = "allow"
    DENY = "deny"
    APPROVAL = "approval"  # parked until a person approves or denies it


@dataclass(frozen=True)
class ActionRequest:
    """An action about to happen.

    ``kind`` is one of :data:`hms_celery.policy.rules.ACTION_KINDS`; ``subject`` what it acts
    on (an agent id, a task id, a breaker key, a family); ``also`` other subjects the action's
    own audit events name (a respawn's new agent, a run id); ``details`` the facts rules look
    at: ``skills``, ``concurrency``, ``host``, ``lineage``, ``backend``/``backends``,
    ``auto`` (a promotion).
    """

    kind: str
    subject: str
    actor: str
    details: dict[str, Any] = field(default_factory=dict)
    also: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in R.ACTION_KINDS:
            raise ValueError(f"unknown policy action {self.kind!r}")


@dataclass(frozen=True)
class Decision:
    """The answer to one :class:`ActionRequest`: outcome, deciding rule, why."""

    outcome: Outcome
    rule: str
    reason: str
    approval_id: int | None = None

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOW

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "rule": self.rule,
            "reason": self.reason,
            "approval_id": self.approval_id,
        }


class PolicyDenied(InputError):
    """The policy denied an action a user asked for."""

    def __init__(self, request: ActionRequest, decision: Decision) -> None:
        self.request, self.decision = request, decision
        super().__init__(
            f"policy denied {request.kind} of {request.subject}: rule {decision.rule!r}: "
            f"{decision.reason}"
        )


class ApprovalPending(InputError):
    """The action waits for a person: ``hms approvals approve ID``."""

    def __init__(self, request: ActionRequest, decision: Decision) -> None:
        self.request, self.decision = request, decision
        self.approval_id = decision.approval_id
        super().__init__(
            f"{request.kind} of {request.subject} needs approval (rule {decision.rule!r}): "
            f"pending as approval {decision.approval_id}; "
            f"`hms approvals approve {decision.approval_id}` carries it out"
        )


@dataclass
class Facts:
    """What the limits count: the live agents and a lineage's recent restarts."""

    agents: list[dict[str, Any]] = field(default_factory=list)  # id, host_id, skills, concurrency
    restarts_last_hour: int = 0


# ----------------------------------------------------------------------------- pure part
def evaluate(policy: Policy, request: ActionRequest, facts: Facts) -> Decision:
    """The decision of ``policy`` about ``request`` given ``facts`` (pure).

    Denying rules are checked first, in file order (the first that objects decides); then the
    approval rules; no objection → ALLOW by the rule ``default``."""
    checked = []
    for name, rule in policy.named():
        if not rule.applies_to_actor(request.actor) or isinstance(rule, R.RequireApproval):
            continue
        why = _objection(rule, request, facts)
        checked.append(name)
        if why:
            return Decision(Outcome.DENY, name, why)
    if request.kind == R.STRATEGY_PROMOTE and request.details.get("auto") is False:
        return Decision(
            Outcome.APPROVAL, AUTO_PROMOTE_OFF, "automatic promotion is off: a person decides"
        )
    for name, rule in policy.named():
        if (
            isinstance(rule, R.RequireApproval)
            and request.kind in rule.actions
            and rule.applies_to_actor(request.actor)
        ):
            return Decision(
                Outcome.APPROVAL, name, rule.description or f"{request.kind} needs approval"
            )
    return Decision(
        Outcome.ALLOW,
        "default",
        "no rule objects" + (f" (checked: {', '.join(checked)})" if checked else ""),
    )


def _objection(rule: Any, request: ActionRequest, facts: Facts) -> str | None:
    """Why ``rule`` denies ``request`` (None: it does not)."""
    kind, d = request.kind, request.details
    adds_agent = kind in (R.SPAWN, R.RESPAWN)
    others = [a for a in facts.agents if a["id"] != request.subject]  # a respawn replaces it
    skills = [str(s) for s in d.get("skills") or ()]
    if isinstance(rule, R.Forbid):
        return f"{kind} is forbidden" if kind in rule.actions else None
    if isinstance(rule, R.MaxAgentsPerHost) and adds_agent and d.get("host"):
        count = sum(1 for a in others if a.get("host_id") == d["host"])
        if count + 1 > rule.limit:
            return f"host {d['host']} runs {count} live agents; the limit is {rule.limit}"
    if isinstance(rule, R.MaxAgentsPerSkill) and adds_agent:
        for skill in skills:
            limit = rule.per_skill.get(skill, rule.limit)
            count = sum(1 for a in others if skill in (a.get("skills") or ()))
            if limit is not None and count + 1 > limit:
                return f"skill {skill} has {count} live agents; the limit is {limit}"
    if isinstance(rule, R.MaxTotalConcurrency) and adds_agent:
        total = sum(int(a.get("concurrency") or 1) for a in others)
        new = int(d.get("concurrency") or 1)
        if total + new > rule.limit:
            return f"{total} pool processes run, {new} more would exceed {rule.limit}"
    restarts = kind in (R.RESTART, R.RESPAWN)
    if (
        isinstance(rule, R.MaxRestartsPerHour)
        and restarts
        and facts.restarts_last_hour >= rule.limit
    ):
        return (
            f"lineage {d.get('lineage') or request.subject} was restarted "
            f"{facts.restarts_last_hour} times in the last hour; the limit is {rule.limit}"
        )
    if isinstance(rule, R.AllowedSkills) and adds_agent:
        bad = [s for s in skills if not _matches(s, rule.skills)]
        if bad:
            return f"skill(s) {bad} not allowed (allowed: {list(rule.skills)})"
    if isinstance(rule, R.AllowedBackends):
        bad = [b for b in _backends(request) if not _matches(b, rule.backends)]
        if bad:
            return f"backend(s) {bad} not allowed (allowed: {list(rule.backends)})"
    return None


def _backends(request: ActionRequest) -> list[str]:
    d = request.details
    if request.kind in (R.SPAWN, R.RESPAWN):
        return [s.split(".", 1)[1] for s in d.get("skills") or () if s.startswith("prove.")]
    if request.kind in (R.REQUEUE, R.GA_RUN_START):
        found = list(d.get("backends") or ())
        return found + ([d["backend"]] if d.get("backend") else [])
    return []


def _matches(value: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


# ----------------------------------------------------------------------------- the rules file
_cache: dict[tuple[str, int, int], Policy] = {}


def policy_path() -> Path | None:
    """The rules file in force: ``HMS_POLICY_FILE``, else the repository's (None: neither)."""
    configured = get_settings().policy_file
    if configured is not None:
        return configured
    return DEFAULT_POLICY_FILE if DEFAULT_POLICY_FILE.is_file() else None


def current_policy() -> Policy:
    """The validated rules in force (re-read when the file changes);
    :class:`PolicyFileError` if the file is missing or invalid."""
    path = policy_path()
    if path is None:
        return Policy()  # no file anywhere: allow everything (the built-in rules)
    try:
        stat = path.stat()
    except OSError as exc:
        raise PolicyFileError(f"{path}: HMS_POLICY_FILE cannot be read: {exc}") from None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    found = _cache.get(key)
    if found is None:
        found = load_policy(path)
        _cache.clear()
        _cache[key] = found
    return found


def check_policy() -> Policy:
    """Validate the rules file at start-up (raises :class:`PolicyFileError`)."""
    policy = current_policy()
    log.info("policy: %d rule(s) from %s", len(policy.rules), policy.source)
    return policy


@signals.worker_init.connect
def _check_at_worker_start(**_: Any) -> None:
    """A worker with a broken rules file does not start (Celery logs and ignores ordinary
    exceptions from signal handlers, so this exits)."""
    try:
        check_policy()
    except PolicyFileError as exc:
        log.critical("%s", exc)
        raise SystemExit(2) from None


# ----------------------------------------------------------------------------- the check
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
