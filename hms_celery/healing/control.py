"""The control plane: how the sweep acts on the world, as a small protocol.

The supervisor's recovery logic (:mod:`hms_celery.healing.decide` and the carrying out in
:mod:`hms_celery.healing.supervisor`) acts only through a :class:`ControlPlane`: store a state
change, requeue a failed agent's attempts, restart a pool or respawn an agent (Celery remote
control, agent-host commands), log an alert, audit, and ask the policy engine.  The real one
is :class:`hms_celery.healing.supervisor.CeleryControlPlane`; :class:`StubControlPlane`
records every call and answers from plain data — like Dramatiq's ``StubBroker`` — so the
decisions have unit tests that need no services.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from hms_celery.policy.engine import ActionRequest, Decision, Outcome


class ControlPlane(Protocol):
    """What the sweep needs to carry its decisions out."""

    def mark(self, agent_id: str, state: str, reason: str) -> bool:
        """Store the agent's new state; False if it was already there or has ended."""
        ...

    def requeue(self, agent: dict[str, Any], summary: dict[str, Any]) -> None:
        """Close and re-publish (policy permitting) the failed agent's open attempts."""
        ...

    def restart(self, agent_id: str) -> None:
        """Replace the live agent's pool processes (remote control)."""
        ...

    def respawn(self, host_id: str, command: dict[str, Any]) -> None:
        """Send an agent host the command to replace an agent."""
        ...

    def alert(self, agent_id: str, reason: str) -> None:
        """Tell a person (the log)."""
        ...

    def audit(self, action: str, subject: str, **details: Any) -> None:
        """Write an audit event."""
        ...

    def authorize(self, request: ActionRequest, payload: dict[str, Any] | None = None) -> Decision:
        """The policy engine's decision about ``request`` (audited)."""
        ...

    def host(self, host_id: str) -> dict[str, Any] | None:
        """The agent host ``host_id``, if it is registered."""
        ...

    def new_agent_id(self, skills: list[str], hostname: str | None = None) -> str:
        """A fresh agent id for a respawn on the machine ``hostname`` (default: this one)."""
        ...

    def registered(self, agent_ids: list[str]) -> set[str]:
        """Which of ``agent_ids`` are registered (a host carried their spawn out)."""
        ...

    def live_hosts(self) -> list[dict[str, Any]]:
        """The agent hosts seen recently, most recent first, each with ``agent_skills``: the
        skill lists of its agents that are alive."""
        ...


@dataclass
class StubControlPlane:
    """A :class:`ControlPlane` that records calls and changes only its own plain data.

    ``states`` are the agents' stored states (``mark`` follows the registry's rules: an ended
    agent stays ended, FAILED only becomes TERMINATED); ``in_flight`` the open attempts (task
    ids) per agent, which ``requeue`` moves to ``requeued``; ``hosts`` the registered agent
    hosts; ``live`` the ids of those that are live, most recent first (default: all of them);
    ``agent_skills`` the skills of the alive agents per host; ``known`` the agent ids that
    registered (test code adds a respawn's new id to say its host carried it out);
    ``outcomes`` the policy's answer per action kind (default ALLOW).  ``commands`` keeps the
    respawn commands sent, in order.
    """

    states: dict[str, str] = field(default_factory=dict)
    in_flight: dict[str, list[str]] = field(default_factory=dict)
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    live: list[str] | None = None
    agent_skills: dict[str, list[list[str]]] = field(default_factory=dict)
    known: set[str] = field(default_factory=set)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    commands: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    _ids: int = 0

    def mark(self, agent_id: str, state: str, reason: str) -> bool:
        current = self.states.get(agent_id)
        if current is None or current in (state, "TERMINATED"):
            return False
        if current == "FAILED" and state != "TERMINATED":
            return False
        self.states[agent_id] = state
        self.calls.append(("mark", agent_id, state, reason))
        return True

    def requeue(self, agent: dict[str, Any], summary: dict[str, Any]) -> None:
        tasks = self.in_flight.pop(agent["id"], [])
        self.calls.append(("requeue", agent["id"], tuple(tasks)))
        for task_id in tasks:
            self.requeued.append(task_id)
            summary["actions"].append({"kind": "REQUEUE", "task": task_id})

    def restart(self, agent_id: str) -> None:
        self.calls.append(("restart", agent_id))

    def respawn(self, host_id: str, command: dict[str, Any]) -> None:
        self.calls.append(("respawn", host_id, command["agent_id"], command["new_agent_id"]))
        self.commands.append((host_id, dict(command)))

    def alert(self, agent_id: str, reason: str) -> None:
        self.calls.append(("alert", agent_id, reason))

    def audit(self, action: str, subject: str, **details: Any) -> None:
        self.calls.append(("audit", action, subject))

    def authorize(self, request: ActionRequest, payload: dict[str, Any] | None = None) -> Decision:
        outcome = self.outcomes.get(request.kind, Outcome.ALLOW)
        self.calls.append(("authorize", request.kind, request.subject, outcome.value))
        approval = len(self.calls) if outcome is Outcome.APPROVAL else None
        return Decision(outcome, "stub", f"stub says {outcome.value}", approval_id=approval)

    def host(self, host_id: str) -> dict[str, Any] | None:
        return self.hosts.get(host_id)

    def new_agent_id(self, skills: list[str], hostname: str | None = None) -> str:
        self._ids += 1
        return f"respawn-{self._ids}@{hostname or 'stub'}"

    def registered(self, agent_ids: list[str]) -> set[str]:
        self.calls.append(("registered", tuple(agent_ids)))
        return self.known.intersection(agent_ids)

    def live_hosts(self) -> list[dict[str, Any]]:
        ids = list(self.hosts) if self.live is None else self.live
        return [{**self.hosts[h], "agent_skills": self.agent_skills.get(h, [])} for h in ids]

    def working(self) -> dict[str, int]:
        """Open attempts per agent, as the store would count them."""
        return {agent: len(tasks) for agent, tasks in self.in_flight.items() if tasks}

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        """The calls of one kind (``"mark"``, ``"restart"``, ...)."""
        return [c for c in self.calls if c[0] == kind]
