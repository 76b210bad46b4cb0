"""Agents: spawn and stop them (policy-checked), list them, follow one."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from hms_celery.agents import registry
from hms_celery.agents.host import new_agent_id, send_host_command
from hms_celery.app import app
from hms_celery.client.actor import ACTOR
from hms_celery.errors import InfrastructureError, InputError
from hms_celery.policy import rules
from hms_celery.policy.engine import ActionRequest, require
from hms_celery.runtime.skills import SKILLS
from hms_celery.settings import get_settings
from hms_celery.store import repository
from hms_celery.store.db import session_scope


class UnknownAgentError(InputError):
    """No agent with this id is registered."""


def spawn_agent(
    skills: list[str], config: dict[str, Any] | None = None, *, host_id: str | None = None
) -> str:
    """Ask an agent host to start a new agent with ``skills``; returns the new agent's id.

    ``config`` may set ``concurrency`` and ``env`` (``HMS_*`` overrides for that agent).  The
    agent registers itself as INITIALIZING at once and READY when its worker is up
    (:func:`wait_for_agent`).  No live agent host → :class:`InfrastructureError`.
    """
    unknown = [s for s in skills if s not in SKILLS]
    if not skills or unknown:
        raise InputError(f"unknown skill(s) {unknown or skills}; known: {sorted(SKILLS)}")
    hosts = registry.live_hosts()
    if host_id is not None:
        hosts = [h for h in hosts if h["id"] == host_id]
    if not hosts:
        raise InfrastructureError(
            "no agent host is running (start one with `hms up`)",
            url=get_settings().effective_broker_url,
        )
    agent_id = new_agent_id(skills, hosts[0]["hostname"])  # named after where it will run
    command = {"op": "spawn", "skills": list(skills), "config": config or {}, "agent_id": agent_id}
    concurrency = int((config or {}).get("concurrency") or get_settings().worker_concurrency)
    policy_request = ActionRequest(  # PolicyDenied / ApprovalPending (an InputError) if not allowed
        rules.SPAWN,
        agent_id,
        ACTOR,
        {"skills": sorted(skills), "concurrency": concurrency, "host": hosts[0]["id"]},
    )
    require(policy_request, payload={"host": hosts[0]["id"], **command})
    send_host_command(hosts[0]["id"], {**command, "authorized": True})
    return agent_id


def stop_agent(agent_id: str) -> None:
    """Stop an agent gracefully (its host, else Celery's remote-control shutdown)."""
    agent = registry.get_agent(agent_id)
    if agent is None:
        raise UnknownAgentError(f"unknown agent {agent_id!r}")
    live = {h["id"] for h in registry.live_hosts()}
    host = agent["host_id"] if agent["host_id"] in live else None
    require(  # PolicyDenied / ApprovalPending (an InputError) if not allowed
        ActionRequest(rules.STOP, agent_id, ACTOR, {"host": host, "forced": False}),
        payload={"host": host, "agent_id": agent_id, "forced": False},
    )
    if host is not None:
        send_host_command(host, {"op": "stop", "agent_id": agent_id, "authorized": True})
    else:
        app.control.shutdown(destination=[agent_id])
        with session_scope() as session:
            repository.audit(session, ACTOR, "agent.stopped", agent_id, via="remote control")


def list_agents(include_ended: bool = True) -> list[dict[str, Any]]:
    """Every registered agent (state, skills, host, last heartbeat, last report)."""
    return registry.list_agents(include_ended=include_ended)


def query_agent_status(agent_id: str) -> dict[str, Any]:
    """One agent: its registry row, state history and the audit events about it."""
    agent = registry.get_agent(agent_id)
    if agent is None:
        raise UnknownAgentError(f"unknown agent {agent_id!r}")
    return {
        **agent,
        "transitions": registry.transitions(agent_id),
        "events": repository.audit_events(subject=agent_id),
    }


def wait_for_agent(
    agent_id: str, states: Iterable[str] = ("READY", "BUSY"), timeout: float = 60.0
) -> dict[str, Any]:
    """Block until the agent is in one of ``states``; :class:`TimeoutError` otherwise."""
    wanted = set(states)
    deadline = time.monotonic() + timeout
    while True:
        agent = registry.get_agent(agent_id)
        if agent is not None and agent["state"] in wanted:
            return agent
        if time.monotonic() >= deadline:
            state = agent["state"] if agent else "unregistered"
            raise TimeoutError(f"agent {agent_id} is {state}, not {sorted(wanted)}")
        time.sleep(0.1)
