"""Respawns the supervisor sent and still waits to see carried out (docs/multihost.md).

A RESPAWN is a command on the failed agent's own host queue (``hms.host.<id>``).  If that host
died together with its agent, the command is never read, yet the lineage must get its
capacity back.  A liveness check when the respawn is decided cannot tell: the host was seen
(``registry.host_seen``, every 5 s) moments before it died.  So every respawn sent is kept in
a :class:`RespawnLedger` (part of the sweep memory) with a deadline.  A host that carries the
command out registers the new agent id at once, before its worker even starts.  When the
deadline passes and no agent with that id is registered, :func:`follow_up` moves the respawn
to another live host (a new agent id, named after that host), or raises an ALERT if there is
none.  It moves a respawn at most once: a re-issue that misses its deadline too becomes an
ALERT.

The command carries its deadline as ``expires_at``, so a host that reads it later (a cut link
comes back) does not start a second replacement (see ``AgentHost.handle``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from hms_celery.policy import ActionKind, RecoveryAction

RESPAWN_GRACE_S = 10.0
"""How much longer than the heartbeat timeout a host may take to register a respawned agent.

An alive host reads its queue continuously and registers the new agent before it starts the
worker, so it needs well under a second.  The heartbeat timeout is how long HMS lets any part
be silent before it counts as dead.  The grace adds time for a host to reconnect after a
broker blip (1 s), for the registration write, and for loaded cores.  A deadline that is too
short is harmless: the respawn moves to another host and the slow host skips the expired
command.  A long one leaves the lineage without its capacity for longer."""

#: Fields of the failed agent's row that a re-issue needs (the ledger keeps only these).
_AGENT_FIELDS = ("id", "lineage", "host_id", "skills", "config", "state", "state_reason")


def respawn_wait(heartbeat_timeout_s: float) -> float:
    """Seconds from sending a respawn until its new agent must be registered."""
    return heartbeat_timeout_s + RESPAWN_GRACE_S


@dataclass(frozen=True)
class IssuedRespawn:
    """One respawn command sent: replace ``agent`` by ``new_agent`` on host ``host``."""

    agent: dict[str, Any]  # the failed agent (the fields in _AGENT_FIELDS)
    action: RecoveryAction  # the RESPAWN: reason, lineage, config changes
    new_agent: str
    host: str
    issued_at: float
    deadline: float
    moved_from: str | None = None  # the host that did not carry it out: this is the re-issue

    def to_json(self) -> dict[str, Any]:
        """A JSON-compatible dict (the sweep memory is stored as JSON)."""
        return {
            "agent": self.agent,
            "action": self.action.to_json(),
            "new_agent": self.new_agent,
            "host": self.host,
            "issued_at": self.issued_at,
            "deadline": self.deadline,
            "moved_from": self.moved_from,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IssuedRespawn:
        """The inverse of :meth:`to_json`."""
        return cls(
            agent=dict(data["agent"]),
            action=RecoveryAction.from_json(data["action"]),
            new_agent=data["new_agent"],
            host=data["host"],
            issued_at=float(data["issued_at"]),
            deadline=float(data["deadline"]),
            moved_from=data.get("moved_from"),
        )


@dataclass
class RespawnLedger:
    """The respawns sent whose new agent has not been seen yet, by failed agent id.

    ``wait_s`` comes from the settings (:func:`respawn_wait`) and is not stored."""

    wait_s: float = respawn_wait(6.0)
    issued: dict[str, IssuedRespawn] = field(default_factory=dict)

    def issue(
        self,
        agent: dict[str, Any],
        action: RecoveryAction,
        new_agent: str,
        host: str,
        now: float,
        moved_from: str | None = None,
    ) -> IssuedRespawn:
        """Remember a respawn sent at ``now``; its deadline is the command's ``expires_at``."""
        entry = IssuedRespawn(
            {k: agent.get(k) for k in _AGENT_FIELDS},
            action,
            new_agent,
            host,
            issued_at=now,
            deadline=now + self.wait_s,
            moved_from=moved_from,
        )
        self.issued[agent["id"]] = entry
        return entry

    def overdue(self, now: float) -> list[IssuedRespawn]:
        """The respawns whose deadline has passed, oldest first (removed from the ledger:
        each is followed up exactly once)."""
        due = sorted((e for e in self.issued.values() if now >= e.deadline), key=_by_deadline)
        for entry in due:
            del self.issued[entry.agent["id"]]
        return due

    def to_json(self) -> dict[str, Any]:
        return {agent: entry.to_json() for agent, entry in sorted(self.issued.items())}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None, wait_s: float) -> RespawnLedger:
        issued = {k: IssuedRespawn.from_json(v) for k, v in (data or {}).items()}
        return cls(wait_s, issued)


def _by_deadline(entry: IssuedRespawn) -> float:
    return entry.deadline


class RespawnPlane(Protocol):
    """What :func:`follow_up` reads (part of :class:`~hms_celery.healing.control.ControlPlane`)."""

    def registered(self, agent_ids: list[str]) -> set[str]: ...

    def live_hosts(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class FollowUp:
    """What to do about a respawn nobody carried out: ``action`` (a RESPAWN on ``host``, or
    an ALERT when ``host`` is None) about the failed ``agent``."""

    agent: dict[str, Any]
    action: RecoveryAction
    host: dict[str, Any] | None = None


def follow_up(ledger: RespawnLedger, now: float, plane: RespawnPlane) -> list[FollowUp]:
    """The re-issues and alerts due at ``now`` for respawns not carried out in time.

    Reads the registry (through ``plane``) only when a deadline has passed."""
    overdue = ledger.overdue(now)
    if not overdue:
        return []
    registered = plane.registered([e.new_agent for e in overdue])
    hosts: list[dict[str, Any]] | None = None
    steps: list[FollowUp] = []
    for entry in overdue:
        if entry.new_agent in registered:
            continue  # carried out in time: nothing more
        agent, original = entry.agent, entry.action
        why = f"host {entry.host} did not carry out the respawn in {now - entry.issued_at:.0f} s"
        if entry.moved_from is not None:
            reason = (
                f"{original.reason}; neither host {entry.moved_from} nor host {entry.host} "
                f"started a replacement for {agent['id']} (moved once, not again)"
            )
            steps.append(FollowUp(agent, _alert(original, reason)))
            continue
        if hosts is None:
            hosts = plane.live_hosts()
        target = choose_host(hosts, exclude=entry.host, skills=agent.get("skills") or [])
        if target is None:
            reason = f"{original.reason}; {why}, and no other live agent host can"
            steps.append(FollowUp(agent, _alert(original, reason)))
            continue
        moved = RecoveryAction(
            ActionKind.RESPAWN,
            agent["id"],
            f"{original.reason}; {why}",
            config_changes=dict(original.config_changes),
            lineage=original.lineage,
        )
        steps.append(FollowUp(agent, moved, target))
    return steps


def choose_host(
    hosts: list[dict[str, Any]], *, exclude: str, skills: list[str]
) -> dict[str, Any] | None:
    """The live host to move a respawn to, never ``exclude``.

    ``hosts`` are live hosts (``registry.live_hosts`` order: most recently seen first), each
    with ``agent_skills``: the skill lists of its agents that are alive.  Preferred: a host
    already running agents with all of ``skills`` (the solvers are installed there), then one
    whose agents are alive at all (a host seen a few seconds ago may have died since; one
    whose agents beat has not), then the fewest such agents (spread the load)."""
    wanted = set(skills)

    def rank(host: dict[str, Any]) -> tuple[bool, bool, int]:
        alive: list[list[str]] = host.get("agent_skills") or []
        covers = any(wanted <= set(s) for s in alive)
        return (not covers, not alive, len(alive))

    candidates = [h for h in hosts if h["id"] != exclude]
    return min(candidates, key=rank) if candidates else None  # min is stable: order breaks ties


def _alert(original: RecoveryAction, reason: str) -> RecoveryAction:
    return RecoveryAction(ActionKind.ALERT, original.agent_id, reason, lineage=original.lineage)
