"""The pure policy decision: rules + action request + facts → ALLOW, DENY or APPROVAL."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hms_celery.errors import InputError
from hms_celery.policy import rules as R
from hms_celery.policy.rules import Policy

#: The rule an unset ``HMS_GA_AUTO_PROMOTE`` stands for: promotions wait for a person.
AUTO_PROMOTE_OFF = "HMS_GA_AUTO_PROMOTE=false"


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
