"""An agent host carries out the respawn commands on its queue, unless they expired.

A real :class:`~hms_celery.agents.host.AgentHost` in this process, taking commands from its
queue on a Redis database of its own, with real prove.z3 workers and the session's store.  No
supervisor runs: the test sends the command a sweep would send.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hms_celery import client
from hms_celery.agents import registry
from hms_celery.agents.host import AgentHost, new_agent_id, send_host_command
from hms_celery.store import repository
from tests.support import FAST_SETTINGS, configure_process, stack_redis_url, wait_until

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def host(stack_env: dict[str, str], tmp_path: Path) -> Iterator[AgentHost]:
    from hms_celery.healing.heartbeats import redis_client

    broker = stack_redis_url(stack_env["HMS_BROKER_URL"], db=14)
    env = {**stack_env, **FAST_SETTINGS, "HMS_BROKER_URL": broker, "HMS_DATA_DIR": str(tmp_path)}
    configure_process(env)
    redis_client().flushdb()
    agent_host = AgentHost(env=env)
    agent_host.start()
    try:
        yield agent_host
    finally:
        agent_host.shutdown(grace=5)
        configure_process(stack_env, unset=[k for k in env if k not in stack_env])


def failed_agent(host: AgentHost) -> tuple[str, int]:
    """A READY prove.z3 agent of ``host`` that the supervisor then marked FAILED, and its pid."""
    agent_id = host.spawn(["prove.z3"], {"concurrency": 1}, authorized=True)
    client.wait_for_agent(agent_id, timeout=90)
    assert registry.transition(agent_id, "FAILED", "no heartbeat for 9.0s")
    return agent_id, host.children[agent_id].process.pid


def respawn(agent_id: str, expires_at: float | None) -> dict[str, object]:
    command: dict[str, object] = {
        "op": "respawn",
        "agent_id": agent_id,
        "new_agent_id": new_agent_id(["prove.z3"]),
        "config_changes": {},
        "authorized": True,
    }
    if expires_at is not None:
        command["expires_at"] = expires_at
    return command


def test_an_expired_respawn_kills_the_stale_worker_and_starts_nothing(host: AgentHost) -> None:
    old, pid = failed_agent(host)
    command = respawn(old, expires_at=time.time() - 30)  # e.g. read after a 30 s cut
    send_host_command(host.host_id, command)

    def skipped() -> list[dict[str, Any]]:
        return repository.audit_events(subject=old, action="agent.respawn_skipped", limit=None)

    (event,) = wait_until(skipped, 60, "the host to skip the respawn")
    wait_until(lambda: old not in host.running(), 30, "the stale worker to exit")
    assert event["actor"] == f"host:{host.host_id}"
    assert event["details"]["stale_worker_killed"] is True
    assert event["details"]["new_agent"] == command["new_agent_id"]
    assert event["details"]["expired_s"] >= 30
    killed = repository.audit_events(subject=old, action="agent.killed", limit=None)
    assert len(killed) == 1, killed
    # No replacement: not registered, no process; the old agent stays FAILED.
    assert registry.get_agent(str(command["new_agent_id"])) is None
    assert host.running() == []
    assert (registry.get_agent(old) or {}).get("state") == "FAILED"
    assert not _alive(pid)


@pytest.mark.parametrize("expires_in", [60.0, None], ids=["not-expired", "no-expiry"])
def test_a_respawn_in_time_or_without_expiry_is_carried_out(
    host: AgentHost, expires_in: float | None
) -> None:
    old, pid = failed_agent(host)
    command = respawn(old, None if expires_in is None else time.time() + expires_in)
    send_host_command(host.host_id, command)
    new = str(command["new_agent_id"])
    replacement = client.wait_for_agent(new, timeout=90)
    assert replacement["lineage"] == old and replacement["host_id"] == host.host_id
    assert host.running() == [new]
    assert not _alive(pid)
    skipped = repository.audit_events(subject=old, action="agent.respawn_skipped", limit=None)
    assert skipped == []


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a reaped child is gone; a zombie counts as gone)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
