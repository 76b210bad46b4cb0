"""The health policy: from an agent's new state to a :class:`RecoveryAction`.

:class:`StandardHealthPolicy` limits restart intensity like an Erlang/OTP supervisor: at most
``max_restarts`` RESTART/RESPAWN actions per agent *lineage* (the first agent of a respawn line;
a respawned agent has a new id) within ``window_s`` seconds.  One more would exceed the limit:
the policy escalates to an ALERT and keeps answering ALERT for that lineage until the window has
passed, so a crash-looping agent cannot cause a restart storm.  Between attempts it backs off
exponentially (``not_before``).

The policy never reads the clock (``now`` is always passed in) and its state is plain JSON, so
sweeps running in different processes can keep it in the store or Redis between runs.  Updates
must be serialised by the caller (one sweep at a time, e.g. under a lock).

Protocol: ``decide`` is a pure query; the caller carries the action out once it is due
(:func:`due`) and then calls ``record(action, now)``, which is what counts against the limit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol, cast, runtime_checkable

from hms_celery.policy.actions import ActionKind, RecoveryAction, due
from hms_celery.policy.health import AgentObservation, AgentState

__all__ = ["HealthPolicy", "StandardHealthPolicy", "due"]

_JSON_VERSION = 1


@runtime_checkable
class HealthPolicy(Protocol):
    """What the supervisor sweep needs from a health policy."""

    def decide(self, obs: AgentObservation, new_state: AgentState, now: float) -> RecoveryAction:
        """The action for an agent observed as ``obs`` and classified as ``new_state``."""
        ...

    def record(self, action: RecoveryAction, now: float) -> None:
        """Note that ``action`` was carried out at ``now``."""
        ...


@dataclass
class _Restart:
    """One RESTART/RESPAWN carried out."""

    at: float
    kind: ActionKind
    agent_id: str


@dataclass
class _Lineage:
    """Restart history of one lineage."""

    restarts: list[_Restart] = field(default_factory=list)
    held_until: float | None = None  # escalated: ALERT, no restarts, until then


def _fmt(seconds: float) -> str:
    return f"{seconds:g}s"


def _lower_concurrency(config: dict[str, Any]) -> dict[str, Any]:
    """Config change halving an int ``concurrency`` > 1 (not below 1); else no change."""
    value = config.get("concurrency")
    if isinstance(value, int) and not isinstance(value, bool) and value > 1:
        return {"concurrency": max(1, value // 2)}
    return {}


class StandardHealthPolicy:
    """DEGRADED → RESTART, FAILED → RESPAWN, anything else → IGNORE, under restart limits.

    * DEGRADED → RESTART: restart the pool of the live worker.
    * FAILED → RESPAWN with the same skills and config.  If the lineage was already respawned
      within the window (it keeps failing, typically at start-up), the respawn halves the
      ``concurrency`` config value (not below 1; only when the config has an int
      ``concurrency`` > 1).  The new agent's config then carries the halved value, so each
      further respawn in the window halves again.
    * A FAILED agent whose id was already respawned (on record in the window) → IGNORE: a
      respawn replaces it, a second one would double the agents (e.g. the sweep crashed
      before marking the old agent TERMINATED).
    * READY, BUSY, INITIALIZING, TERMINATED → IGNORE.

    Restart intensity: with ``n`` restarts of the lineage on record after ``now - window_s``,
    ``n >= max_restarts`` → ALERT with ``escalated=True``.  Once that ALERT is recorded the
    lineage stays escalated (ALERT for DEGRADED/FAILED) until ``window_s`` after it; even if the
    caller does not record the ALERT, the count alone never allows more than ``max_restarts``
    restarts in any window.

    Backoff: the k-th restart in the window (k = n + 1) gets ``not_before = last + min(
    backoff_base_s * 2**(k-1), backoff_max_s)`` where ``last`` is the time of the previous one;
    the first in the window (k = 1, nothing to wait for) is immediate (``not_before=None``).
    """

    def __init__(
        self,
        max_restarts: int = 3,
        window_s: float = 60.0,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 30.0,
    ) -> None:
        if max_restarts < 0:
            raise ValueError(f"max_restarts must be >= 0, not {max_restarts}")
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, not {window_s}")
        if backoff_base_s < 0 or backoff_max_s < backoff_base_s:
            raise ValueError("need 0 <= backoff_base_s <= backoff_max_s")
        self.max_restarts = max_restarts
        self.window_s = float(window_s)
        self.backoff_base_s = float(backoff_base_s)
        self.backoff_max_s = float(backoff_max_s)
        self._lineages: dict[str, _Lineage] = {}

    # --- queries ---------------------------------------------------------------------------

    def backoff(self, k: int) -> float:
        """Seconds to wait after the previous restart before the k-th restart in the window."""
        return min(self.backoff_base_s * 2 ** (k - 1), self.backoff_max_s)

    def restarts_in_window(self, lineage: str, now: float) -> int:
        """RESTART/RESPAWN actions of ``lineage`` recorded after ``now - window_s``."""
        return len(self._recent(lineage, now))

    def escalated_until(self, lineage: str, now: float) -> float | None:
        """When the escalation of ``lineage`` ends, or None if it is not escalated at ``now``."""
        entry = self._lineages.get(lineage)
        if entry is None or entry.held_until is None or now >= entry.held_until:
            return None
        return entry.held_until

    def decide(self, obs: AgentObservation, new_state: AgentState, now: float) -> RecoveryAction:
        """The action for ``obs`` now classified as ``new_state`` (does not change the state)."""
        new_state = AgentState(new_state)
        agent, lineage = obs.agent_id, obs.lineage

        def action(kind: ActionKind, reason: str, **kw: Any) -> RecoveryAction:
            return RecoveryAction(kind, agent, reason, lineage=lineage, **kw)

        if new_state is AgentState.DEGRADED:
            kind = ActionKind.RESTART
        elif new_state is AgentState.FAILED:
            kind = ActionKind.RESPAWN
        else:
            return action(ActionKind.IGNORE, f"{new_state.value}: nothing to do")

        recent = self._recent(lineage, now)
        if kind is ActionKind.RESPAWN and any(
            r.kind is ActionKind.RESPAWN and r.agent_id == agent for r in recent
        ):
            return action(ActionKind.IGNORE, f"{agent} was already respawned")

        held = self.escalated_until(lineage, now)
        if held is not None:
            return action(
                ActionKind.ALERT,
                f"restart limit exceeded ({self.max_restarts} in {_fmt(self.window_s)}): "
                f"giving up until t={held:g}, alerting",
                escalated=True,
            )
        if len(recent) >= self.max_restarts:
            return action(
                ActionKind.ALERT,
                f"{len(recent) + 1} restarts in {_fmt(self.window_s)} exceeds "
                f"{self.max_restarts}: giving up, alerting",
                escalated=True,
            )

        k = len(recent) + 1
        not_before = max(r.at for r in recent) + self.backoff(k) if recent else None
        changes: dict[str, Any] = {}
        reason = (
            "degraded: restarting the worker pool"
            if kind is ActionKind.RESTART
            else "failed: respawning with the same skills and config"
        )
        if kind is ActionKind.RESPAWN and any(r.kind is ActionKind.RESPAWN for r in recent):
            changes = _lower_concurrency(obs.config)
            if changes:
                reason = (
                    f"failed again within {_fmt(self.window_s)}: respawning with concurrency "
                    f"{obs.config['concurrency']} -> {changes['concurrency']}"
                )
        if k > 1:
            reason += f" (restart {k} of {self.max_restarts} in {_fmt(self.window_s)})"
        return action(kind, reason, config_changes=changes, not_before=not_before)

    # --- updates ---------------------------------------------------------------------------

    def record(self, action: RecoveryAction, now: float) -> None:
        """Note that ``action`` was carried out at ``now``.

        RESTART/RESPAWN count against the lineage's limit; an escalated ALERT starts (or keeps)
        the escalation; IGNORE and other ALERTs change nothing.  Recording an action before it
        is due (``now < not_before``) is a caller bug: ValueError.
        """
        if not due(action, now):
            raise ValueError(
                f"{action.kind} of {action.agent_id} is not due before t={action.not_before:g} "
                f"(now t={now:g})"
            )
        entry = self._lineages.setdefault(action.lineage, _Lineage())
        if action.kind.is_restart:
            entry.restarts.append(_Restart(now, action.kind, action.agent_id))
        elif (
            action.kind is ActionKind.ALERT
            and action.escalated
            and (entry.held_until is None or now >= entry.held_until)
        ):
            entry.held_until = now + self.window_s
        self._prune(now)

    def _recent(self, lineage: str, now: float) -> list[_Restart]:
        entry = self._lineages.get(lineage)
        if entry is None:
            return []
        return [r for r in entry.restarts if r.at > now - self.window_s]

    def _prune(self, now: float) -> None:
        """Forget restarts out of the window and lineages with nothing left."""
        for name in list(self._lineages):
            entry = self._lineages[name]
            entry.restarts = [r for r in entry.restarts if r.at > now - self.window_s]
            if entry.held_until is not None and now >= entry.held_until:
                entry.held_until = None
            if not entry.restarts and entry.held_until is None:
                del self._lineages[name]

    # --- persistence -----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Parameters and history as a JSON-compatible dict."""
        return {
            "version": _JSON_VERSION,
            "max_restarts": self.max_restarts,
            "window_s": self.window_s,
            "backoff_base_s": self.backoff_base_s,
            "backoff_max_s": self.backoff_max_s,
            "lineages": {
                name: {
                    "restarts": [[r.at, r.kind.value, r.agent_id] for r in entry.restarts],
                    "held_until": entry.held_until,
                }
                for name, entry in sorted(self._lineages.items())
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | str, **params: Any) -> StandardHealthPolicy:
        """The inverse of :meth:`to_json`; keyword ``params`` (e.g. from settings) override the
        stored constructor parameters while the history is kept."""
        if isinstance(data, str):
            data = cast(dict[str, Any], json.loads(data))
        if data.get("version") != _JSON_VERSION:
            raise ValueError(f"unsupported policy state version {data.get('version')!r}")
        names = ("max_restarts", "window_s", "backoff_base_s", "backoff_max_s")
        policy = cls(**{name: data[name] for name in names} | params)
        for name, entry in data["lineages"].items():
            policy._lineages[name] = _Lineage(
                restarts=[
                    _Restart(float(at), ActionKind(kind), agent_id)
                    for at, kind, agent_id in entry["restarts"]
                ],
                held_until=entry.get("held_until"),
            )
        return policy
