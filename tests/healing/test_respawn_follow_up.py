"""A respawn whose host does not carry it out moves to another live host, once.

The sweeps run against the :class:`StubControlPlane` (as in test_supervisor_decisions): the
failed agent's own host is ``host-1``; ``host-2`` and ``host-3`` are other hosts.  A respawn's
new agent counts as carried out when its id is in ``plane.known`` (the registry).  Between
sweeps the respawn ledger goes through JSON, as it does through the store.
"""

from __future__ import annotations

import json
from typing import Any

from hms_celery.healing.respawns import (
    RESPAWN_GRACE_S,
    RespawnLedger,
    choose_host,
    respawn_wait,
)
from hms_celery.policy import rules as R
from hms_celery.policy.engine import Outcome
from tests.healing.test_supervisor_decisions import HOST, T0, World, agent, beat

WAIT = respawn_wait(6.0)  # the World's heartbeat timeout is 6 s
Z3 = [["prove.z3"]]


def host(n: int) -> dict[str, Any]:
    return {"id": f"host-{n}", "hostname": f"h{n}", "pid": n, "queue": f"hms.host.host-{n}"}


def cluster(*live: str, skills: dict[str, list[list[str]]] | None = None) -> World:
    """Agent ``a`` on host-1, which dies: its beat is 9 s old at T0."""
    world = World(agent("a"))
    world.plane.hosts = {"host-1": HOST, "host-2": host(2), "host-3": host(3)}
    world.plane.live = list(live)
    world.plane.agent_skills = skills if skills is not None else {"host-2": Z3, "host-3": Z3}
    return world


def sweep(world: World, at: float) -> dict[str, Any]:
    """A sweep at ``at`` (``a`` silent since T0 - 9), its memory stored and read back."""
    summary = world.sweep(at, {"a": beat(at - T0 + 9.0, at)})
    ledger = world.memory.respawns
    world.memory.respawns = RespawnLedger.from_json(
        json.loads(json.dumps(ledger.to_json())), ledger.wait_s
    )
    return summary


def respawns(world: World) -> list[tuple[Any, ...]]:
    return world.plane.of("respawn")


def test_the_wait_is_the_heartbeat_timeout_plus_a_start_up_grace() -> None:
    assert WAIT == 6.0 + RESPAWN_GRACE_S
    assert RespawnLedger().wait_s == WAIT  # the default matches the default timeout


def test_a_respawn_not_carried_out_in_time_moves_to_another_live_host_once() -> None:
    world = cluster("host-1", "host-2", "host-3", skills={"host-3": Z3})
    sweep(world, T0)
    assert respawns(world) == [("respawn", "host-1", "a", "respawn-1@elsewhere")]
    (sent,) = world.plane.commands
    assert sent[1]["expires_at"] == T0 + WAIT  # the host must not start it after that

    sweep(world, T0 + WAIT - 1)  # not due yet: no registry read, nothing sent
    assert world.plane.of("registered") == []
    assert len(respawns(world)) == 1

    summary = sweep(world, T0 + WAIT)
    assert world.plane.of("registered") == [("registered", ("respawn-1@elsewhere",))]
    # host-1 is still listed as live (it was seen moments before it died) but is the one
    # that failed; host-3 runs live prove.z3 agents, host-2 none.
    assert respawns(world)[1:] == [("respawn", "host-3", "a", "respawn-2@h3")]
    assert world.plane.commands[1][1]["expires_at"] == T0 + 2 * WAIT
    (moved,) = [a for a in summary["actions"] if a["kind"] == "RESPAWN"]
    assert moved["moved_from"] == "host-1" and moved["host"] == "host-3"
    assert f"host host-1 did not carry out the respawn in {WAIT:.0f} s" in moved["reason"]
    assert ("audit", "recovery.respawn", "a") in world.plane.calls[-2:]
    asked = [c for c in world.plane.of("authorize") if c[1] == R.RESPAWN]
    assert asked == [("authorize", R.RESPAWN, "a", "allow")] * 2  # the same policy check
    # One recovery, moved: it counts once against the lineage's restart limit.
    assert world.memory.policy.restarts_in_window("a", T0 + WAIT) == 1

    # The re-issue is not carried out either: one ALERT, and nothing more, ever.
    sweep(world, T0 + 2 * WAIT)
    (alert,) = world.plane.of("alert")
    assert "neither host host-1 nor host host-3 started a replacement" in alert[2]
    for later in (3, 4, 10):
        sweep(world, T0 + later * WAIT)
    assert len(respawns(world)) == 2 and len(world.plane.of("alert")) == 1
    assert world.memory.respawns.issued == {}


def test_a_respawn_carried_out_in_time_needs_nothing_more() -> None:
    world = cluster("host-1", "host-2")
    sweep(world, T0)
    world.plane.known.add("respawn-1@elsewhere")  # host-1 registered the new agent
    before = len(world.acted())
    sweep(world, T0 + WAIT)
    sweep(world, T0 + 3 * WAIT)
    assert world.acted()[before:] == [("registered", ("respawn-1@elsewhere",))]
    assert world.memory.respawns.issued == {}


def test_no_other_live_host_means_one_alert_audited() -> None:
    world = cluster("host-1")  # host-2 and host-3 are registered but not seen lately
    sweep(world, T0)
    sweep(world, T0 + WAIT)
    sweep(world, T0 + 2 * WAIT)
    assert len(respawns(world)) == 1  # never to the host that did not carry it out
    (alert,) = world.plane.of("alert")
    assert "host host-1 did not carry out the respawn" in alert[2]
    assert "no other live agent host can" in alert[2]
    assert ("audit", "recovery.alert", "a") in world.plane.calls
    assert ("authorize", R.ALERT, "a", "allow") in world.plane.calls


def test_a_re_issue_the_policy_denies_becomes_an_alert_citing_the_rule() -> None:
    world = cluster("host-1", "host-2")
    sweep(world, T0)
    world.plane.outcomes = {R.RESPAWN: Outcome.DENY}
    sweep(world, T0 + WAIT)
    assert len(respawns(world)) == 1
    (alert,) = world.plane.of("alert")
    assert "did not carry out the respawn" in alert[2]
    assert "policy denied respawn (rule 'stub': stub says deny)" in alert[2]
    sweep(world, T0 + 3 * WAIT)
    assert len(world.plane.of("alert")) == 1


def test_a_re_issue_that_needs_approval_is_parked_and_not_retried() -> None:
    world = cluster("host-1", "host-2")
    sweep(world, T0)
    world.plane.outcomes = {R.RESPAWN: Outcome.APPROVAL}
    summary = sweep(world, T0 + WAIT)
    assert [a["kind"] for a in summary["actions"]] == ["PARKED"]
    sweep(world, T0 + 3 * WAIT)
    assert len(respawns(world)) == 1 and world.plane.of("alert") == []


def test_the_host_chosen_runs_the_skill_else_has_live_agents_else_any() -> None:
    hosts: list[dict[str, Any]] = [
        {"id": "dead-too", "agent_skills": []},  # seen last, but its agents do not beat
        {"id": "sup", "agent_skills": [["supervisor"]]},
        {"id": "busy", "agent_skills": [["prove.z3"], ["prove.z3"]]},
        {"id": "z3", "agent_skills": [["prove.z3"]]},
        {"id": "origin", "agent_skills": [["prove.z3"]]},
    ]

    def chosen(candidates: list[dict[str, Any]]) -> str | None:
        found = choose_host(candidates, exclude="origin", skills=["prove.z3"])
        return found["id"] if found else None

    assert chosen(hosts) == "z3"  # the skill, and the fewest agents
    assert chosen(hosts[:3]) == "busy"
    assert chosen(hosts[:2]) == "sup"
    assert chosen(hosts[:1]) == "dead-too"
    assert chosen(hosts[4:]) is None
