"""The supervisor's recovery decisions with a stub control plane: no Redis, store or worker.

Each test builds what a sweep observed (registry rows, heartbeats, open attempts), runs the
decide → act steps of :func:`hms_celery.healing.supervisor.run_sweep` against a
:class:`StubControlPlane`, and checks what it was asked to do, in order.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from hms_celery.healing.control import StubControlPlane
from hms_celery.healing.decide import Observations, SweepMemory
from hms_celery.healing.supervisor import run_sweep
from hms_celery.policy import StandardHealthPolicy
from hms_celery.policy import rules as R
from hms_celery.policy.engine import Outcome

T0 = 1_800_000_000.0  # the sweeps' clock
HOST = {"id": "host-1", "hostname": "elsewhere", "pid": 1, "queue": "hms.host.host-1"}


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def agent(agent_id: str, state: str = "READY", **fields: Any) -> dict[str, Any]:
    """A registry row as ``registry.list_agents`` returns it (registered 100 s before T0)."""
    row = {
        "id": agent_id,
        "lineage": agent_id,
        "host": "elsewhere",  # not this machine: no process probe
        "host_id": "host-1",
        "stack": "s",
        "pid": 4242,
        "skills": ["prove.z3"],
        "queues": ["prove.z3"],
        "config": {"concurrency": 2},
        "version": "test",
        "state": state,
        "state_reason": "registered",
        "started_at": _iso(T0 - 100),
        "updated_at": _iso(T0 - 100),
        "last_heartbeat_at": _iso(T0 - 5),
        "last_report": {"status": "Healthy", "problems": []},
        "last_report_at": _iso(T0 - 2),
    }
    row.update(fields)
    return row


def beat(age: float, now: float = T0, active: int = 0, state: str = "online") -> dict[str, Any]:
    return {"seen": now - age, "state": state, "active": active, "processed": 0, "pid": 4242}


class World:
    """The stub plane, the supervisor's memory and the agents' rows across sweeps."""

    def __init__(self, *rows: dict[str, Any], max_restarts: int = 3) -> None:
        self.rows = {r["id"]: r for r in rows}
        self.plane = StubControlPlane(
            states={r["id"]: r["state"] for r in rows}, hosts={"host-1": HOST}
        )
        self.memory = SweepMemory(
            StandardHealthPolicy(max_restarts=max_restarts, window_s=60, backoff_base_s=1)
        )

    def sweep(
        self,
        now: float,
        beats: dict[str, dict[str, Any]],
        have_heartbeats: bool = True,
        round_at: float | None = None,
    ) -> dict[str, Any]:
        # What the store holds now: the states the plane stored.
        for agent_id, row in self.rows.items():
            row["state"] = self.plane.states[agent_id]
        obs = Observations(
            now=now,
            agents=list(self.rows.values()),
            beats=beats,
            working=self.plane.working(),
            round_at=round_at,
            have_heartbeats=have_heartbeats,
            heartbeat_timeout_s=6.0,
            report_timeout_s=10.0,
        )
        summary: dict[str, Any] = {"agents": 0, "transitions": [], "actions": []}
        run_sweep(obs, self.memory, self.plane, summary)
        return summary

    def acted(self) -> list[tuple[Any, ...]]:
        """The calls that change the world (not the policy questions)."""
        return [c for c in self.plane.calls if c[0] != "authorize"]


def test_a_dead_agent_is_failed_its_attempts_requeued_and_it_is_respawned() -> None:
    world = World(agent("a"), agent("b"))
    world.plane.in_flight = {"a": ["t1", "t2"], "b": ["t3"]}
    summary = world.sweep(T0, {"a": beat(7.0), "b": beat(1.0)})  # a: 7 s > 6 s timeout

    assert summary["transitions"] == [
        {"agent": "a", "to": "FAILED", "reason": "no heartbeat for 7.0s"}
    ]
    assert world.acted() == [
        ("mark", "a", "FAILED", "no heartbeat for 7.0s"),
        ("audit", "agent.failed", "a"),
        ("requeue", "a", ("t1", "t2")),
        ("respawn", "host-1", "a", "respawn-1@elsewhere"),  # named after its host
        ("audit", "recovery.respawn", "a"),
    ]
    assert world.plane.requeued == ["t1", "t2"]
    assert world.plane.in_flight == {"b": ["t3"]}  # the live agent's work is left alone
    assert ("authorize", R.RESPAWN, "a", "allow") in world.plane.calls


def test_requeued_attempts_and_a_respawn_are_not_repeated_by_later_sweeps() -> None:
    world = World(agent("a"))
    world.plane.in_flight = {"a": ["t1"]}
    world.sweep(T0, {"a": beat(7.0)})
    first = len(world.plane.calls)

    world.sweep(T0 + 2, {"a": beat(9.0)})  # still dead, nothing open any more
    assert world.plane.calls[first:] == []
    assert world.plane.requeued == ["t1"]

    # A zombie of the failed agent opens an attempt: that one is requeued, once.
    world.plane.in_flight = {"a": ["t9"]}
    world.sweep(T0 + 4, {"a": beat(11.0)})
    world.sweep(T0 + 6, {"a": beat(13.0)})
    assert world.plane.requeued == ["t1", "t9"]
    assert len(world.plane.of("respawn")) == 1


def test_a_stale_beat_after_failed_does_not_revive_or_respawn_again() -> None:
    world = World(agent("a"))
    world.sweep(T0, {"a": beat(8.0)})
    assert world.plane.states["a"] == "FAILED"
    before = len(world.plane.calls)
    world.sweep(T0 + 2, {"a": beat(0.5)})  # beats again (a zombie): FAILED stays FAILED
    world.sweep(T0 + 4, {"a": beat(0.5, state="offline")})  # even its goodbye changes nothing
    assert world.plane.calls[before:] == []
    assert world.plane.states["a"] == "FAILED"


def test_a_degraded_report_restarts_the_pool_and_a_wedged_pool_too() -> None:
    sick = agent("a", last_report={"status": "Degraded", "problems": ["z3"]})
    # Health check sent 15 s ago and never answered (report 20 s old), main process beats.
    wedged = agent("w", last_report_at=_iso(T0 - 20))
    world = World(sick, wedged, agent("ok"))
    world.sweep(T0, {n: beat(1.0) for n in ("a", "w", "ok")}, round_at=T0 - 15)

    assert world.plane.states == {"a": "DEGRADED", "w": "DEGRADED", "ok": "READY"}
    assert world.plane.of("restart") == [("restart", "a"), ("restart", "w")]
    marks = {c[1]: c[3] for c in world.plane.of("mark")}
    assert marks["w"] == "main process alive, pool not answering health checks: wedged"
    assert marks["a"] == "agent reports Degraded"


def test_a_flapping_agent_is_restarted_with_backoff_then_escalated_to_an_alert() -> None:
    world = World(agent("a"), max_restarts=2)
    degraded = {"status": "Degraded", "problems": ["z3"]}
    healthy = {"status": "Healthy", "problems": []}
    now = T0
    restarts_at = []
    for _ in range(12):  # degraded, healthy again, degraded again, ...
        for report in (degraded, healthy):
            world.rows["a"]["last_report"] = report
            restarts = len(world.plane.of("restart"))
            world.sweep(now, {"a": beat(1.0, now)})
            if len(world.plane.of("restart")) > restarts:
                restarts_at.append(now)
            now += 1.0
    assert len(restarts_at) == 2  # max_restarts in the window, never more
    assert restarts_at[1] - restarts_at[0] >= 1.0  # the second waited for its backoff
    alerts = world.plane.of("alert")
    assert len(alerts) == 1 and "exceeds 2" in alerts[0][2]  # escalated once, then quiet
    assert world.memory.policy.escalated_until("a", now) is not None


def test_no_fresh_monitor_no_verdicts_but_failed_agents_are_still_recovered() -> None:
    world = World(agent("a"), agent("gone", state="FAILED"))
    world.plane.in_flight = {"a": ["t1"], "gone": ["t2"]}
    summary = world.sweep(T0, {}, have_heartbeats=False)  # no beats at all: monitor stale
    assert summary["transitions"] == []
    assert world.plane.states["a"] == "READY"
    assert world.plane.requeued == ["t2"]
    assert world.plane.of("respawn") == [("respawn", "host-1", "gone", "respawn-1@elsewhere")]


def test_offline_means_terminated_and_nothing_to_recover() -> None:
    world = World(agent("a"))
    world.plane.in_flight = {"a": ["t1"]}
    world.sweep(T0, {"a": beat(0.2, state="offline")})
    assert world.acted() == [("mark", "a", "TERMINATED", "worker went offline")]
    assert world.plane.requeued == []  # a clean stop: its pool finished (or redelivers)


def test_busy_ready_and_the_startup_grace() -> None:
    new = agent("new", state="INITIALIZING", started_at=_iso(T0 - 3), last_heartbeat_at=None)
    late = agent("late", state="INITIALIZING", started_at=_iso(T0 - 30), last_heartbeat_at=None)
    world = World(agent("busy"), new, late)
    world.sweep(T0, {"busy": beat(1.0, active=2)})
    assert world.plane.states == {"busy": "BUSY", "new": "INITIALIZING", "late": "FAILED"}
    world.sweep(T0 + 2, {"busy": beat(1.0, T0 + 2), "new": beat(0.5, T0 + 2)})
    assert world.plane.states["busy"] == "READY" and world.plane.states["new"] == "READY"


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [(Outcome.DENY, "alert"), (Outcome.APPROVAL, "parked")],
)
def test_a_denied_respawn_becomes_an_alert_and_one_needing_approval_is_parked(
    outcome: Outcome, expected: str
) -> None:
    world = World(agent("a"))
    world.plane.outcomes = {R.RESPAWN: outcome}
    summary = world.sweep(T0, {"a": beat(9.0)})
    assert world.plane.of("respawn") == []
    if expected == "alert":
        (alert,) = world.plane.of("alert")
        assert "policy denied respawn" in alert[2]
        assert ("audit", "recovery.alert", "a") in world.plane.calls
    else:
        assert world.plane.of("alert") == []
        assert [a["kind"] for a in summary["actions"]] == ["PARKED"]
    world.sweep(T0 + 2, {"a": beat(11.0)})  # decided once: no second request
    assert len([c for c in world.plane.of("authorize") if c[1] == R.RESPAWN]) == 1


def test_no_host_no_respawn_but_an_alert_saying_why() -> None:
    world = World(agent("a", host_id=None))
    world.sweep(T0, {"a": beat(9.0)})
    (alert,) = world.plane.of("alert")
    assert "no agent host owns a, cannot respawn" in alert[2]
    assert world.plane.of("respawn") == []
