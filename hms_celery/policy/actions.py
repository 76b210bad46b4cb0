"""Recovery actions: what the health policy asks the supervisor to do about one agent.

An action is plain data (JSON round trip) so a sweep can store it, log it in the audit trail or
hand it to another process.  ``not_before`` carries the restart backoff: the caller must not
carry the action out before that time (see :func:`due`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast


class ActionKind(StrEnum):
    """What to do about an agent."""

    RESTART = "RESTART"  # restart the pool of the live worker (Celery remote control)
    RESPAWN = "RESPAWN"  # start a new agent (new id, same lineage) with the same skills and config
    ALERT = "ALERT"  # tell a human; do not restart
    IGNORE = "IGNORE"  # nothing to do

    @property
    def is_restart(self) -> bool:
        """True for the kinds that count against the restart intensity (RESTART, RESPAWN)."""
        return self in (ActionKind.RESTART, ActionKind.RESPAWN)


@dataclass(frozen=True)
class RecoveryAction:
    """One decision of the health policy about one agent.

    ``lineage`` is the id of the first agent of a respawn line (default: ``agent_id``); the policy
    counts restarts per lineage, so :meth:`StandardHealthPolicy.record` needs it.
    ``config_changes`` are applied on top of the agent's config by a RESPAWN.  ``not_before``
    (epoch seconds) is the earliest time the action may be carried out (backoff); ``None`` means
    at once.  ``escalated`` marks an ALERT raised because the restart limit was exceeded.
    """

    kind: ActionKind
    agent_id: str
    reason: str
    config_changes: dict[str, Any] = field(default_factory=dict)
    not_before: float | None = None
    escalated: bool = False
    lineage: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ActionKind(self.kind))
        if not self.lineage:
            object.__setattr__(self, "lineage", self.agent_id)

    def to_json(self) -> dict[str, Any]:
        """A JSON-compatible dict (``json.dumps`` it for Redis; Celery takes it as is)."""
        return {
            "kind": self.kind.value,
            "agent_id": self.agent_id,
            "lineage": self.lineage,
            "reason": self.reason,
            "config_changes": dict(self.config_changes),
            "not_before": self.not_before,
            "escalated": self.escalated,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> RecoveryAction:
        """The inverse of :meth:`to_json` (accepts the dict or its JSON text)."""
        if isinstance(data, str):
            data = cast(dict[str, Any], json.loads(data))
        return cls(
            kind=ActionKind(data["kind"]),
            agent_id=data["agent_id"],
            reason=data["reason"],
            config_changes=dict(data.get("config_changes") or {}),
            not_before=data.get("not_before"),
            escalated=bool(data.get("escalated", False)),
            lineage=data.get("lineage") or "",
        )


def due(action: RecoveryAction, now: float) -> bool:
    """May ``action`` be carried out at ``now``?  (Its backoff, ``not_before``, has passed.)"""
    return action.not_before is None or now >= action.not_before
