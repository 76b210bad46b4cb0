"""Chaos tests: real workers under an agent host, the real broker and PostgreSQL.

Every test asserts: no task lost, no result committed twice, and the end state of the agents.
Each runs on both brokers: Redis, and RabbitMQ (a vhost of its own, HMS_REDIS_URL for the
coordination state).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hms_celery import client
from hms_celery.agents import registry
from hms_celery.client.local_stack import LocalStack
from hms_celery.store import repository
from tests.support import (
    BOUNDED_ONLY,
    BROKERS,
    isolated_stack,
    rabbitmq_vhost,
    stack_redis_url,
    wait_until,
)

pytestmark = [pytest.mark.services, pytest.mark.slow]

# ~5 s of real Z3 work (201 sizes): long enough to be killed mid-proof.
SLOW = BOUNDED_ONLY  # a claim HMS can only check size by size


@pytest.fixture(params=BROKERS)
def broker_env(
    request: pytest.FixtureRequest, stack_env: dict[str, str]
) -> Iterator[dict[str, str]]:
    """The broker variables of one chaos stack: a Redis database of its own (the session's
    `worker` fixture must not take these tasks), or a fresh RabbitMQ vhost with that Redis
    database for HMS's coordination state."""
    redis = stack_redis_url(stack_env["HMS_BROKER_URL"])
    if request.param == "redis":
        yield {"HMS_BROKER_URL": redis}
        return
    with rabbitmq_vhost("hms_chaos") as amqp:
        yield {"HMS_BROKER_URL": amqp, "HMS_REDIS_URL": redis}


@pytest.fixture
def stack(
    stack_env: dict[str, str], broker_env: dict[str, str], tmp_path: Path
) -> Iterator[LocalStack]:
    with isolated_stack(stack_env, tmp_path, broker=broker_env) as s:
        yield s


def lineage_members(lineage: str) -> list[dict]:
    return [a for a in registry.list_agents() if a["lineage"] == lineage]


def running_attempt(task_id: str):  # type: ignore[no-untyped-def]
    status = client.query_task_status(task_id)
    open_attempts = [a for a in status["attempts"] if a["ended_at"] is None]
    return open_attempts[-1] if open_attempts else None


def test_sigkill_mid_proof_reruns_once_elsewhere_and_respawns(stack: LocalStack) -> None:
    first = stack.spawn(["prove.z3"])
    second = stack.spawn(["prove.z3"])
    task_id = client.submit_proof_task("slow", SLOW, max_size=200, timeout=120)
    attempt = wait_until(lambda: running_attempt(task_id), 30, "the proof to start")
    victim = attempt["agent"]
    assert victim in (first, second)
    killed_at = time.monotonic()
    os.killpg(stack.pid(victim), signal.SIGKILL)  # the worker and its pool, as a crash would

    status = client.wait_for_result(task_id, timeout=120)
    assert status["state"] == "DONE" and status["verdict"] == "BOUNDED"
    assert repository.count_results(task_id) == 1
    outcomes = [(a["agent"], a["outcome"]) for a in status["attempts"]]
    assert outcomes[0] == (victim, "LOST")
    assert status["agent"] != victim
    assert [o for _, o in outcomes].count("BOUNDED") == 1

    dead = registry.get_agent(victim)
    assert dead["state"] == "FAILED"
    replacement = wait_until(
        lambda: [a for a in lineage_members(victim) if a["id"] != victim and a["state"] == "READY"],
        60,
        "the respawned agent",
    )
    recovered_s = time.monotonic() - killed_at
    assert recovered_s < 60
    actions = {e["action"] for e in repository.audit_events(subject=victim)}
    assert {"recovery.respawn"} <= actions, actions
    requeues = [
        e for e in repository.audit_events(subject=task_id) if e["action"] == "task.requeued"
    ]
    assert requeues
    # RabbitMQ returns a dead connection's unacknowledged message itself; on Redis HMS does.
    amqp = stack.env["HMS_BROKER_URL"].startswith("amqp")
    assert {e["details"].get("by") for e in requeues} == ({"broker"} if amqp else {None})
    # Every attempt the victim lost is requeued once.  (Usually one; on RabbitMQ a connection
    # that lapses under load redelivers to the same live worker, which opens a second attempt
    # before it is killed: docs/brokers.md.)
    lost = sorted(a["number"] for a in status["attempts"] if a["outcome"] == "LOST")
    assert sorted(e["details"]["lost_attempt"] for e in requeues) == lost
    assert replacement[0]["skills"] == ["prove.z3"]
    survivor = second if victim == first else first
    assert sorted(stack.host.running("prove.z3")) == sorted([survivor, replacement[0]["id"]])


def test_sigstop_hung_agent_is_detected_and_replaced(stack: LocalStack) -> None:
    victim = stack.spawn(["prove.z3"])
    os.killpg(stack.pid(victim), signal.SIGSTOP)
    try:
        failed = wait_until(
            lambda: registry.get_agent(victim)["state"] == "FAILED", 40, "the hang to be detected"
        )
        assert failed
        assert "heartbeat" in registry.get_agent(victim)["state_reason"]
        wait_until(
            lambda: any(
                a["id"] != victim and a["state"] == "READY" for a in lineage_members(victim)
            ),
            60,
            "a replacement",
        )
    finally:
        child = stack.host.children.get(victim)
        if child is not None:
            os.killpg(child.process.pid, signal.SIGKILL)


def test_killing_a_pool_child_loses_nothing(stack: LocalStack) -> None:
    agent = stack.spawn(["prove.z3"])
    task_id = client.submit_proof_task("slow", SLOW, max_size=200, timeout=120)
    attempt = wait_until(lambda: running_attempt(task_id), 30, "the proof to start")
    assert attempt["agent"] == agent
    os.kill(attempt["pid"], signal.SIGKILL)  # only the pool process; the worker survives
    status = client.wait_for_result(task_id, timeout=120)
    assert status["verdict"] == "BOUNDED"
    assert repository.count_results(task_id) == 1
    assert registry.get_agent(agent)["state"] in ("READY", "BUSY")
    assert stack.host.children[agent].process.poll() is None


def test_crash_looping_agent_hits_the_restart_limit_and_alerts(stack: LocalStack) -> None:
    # A wrong setting makes every start of this agent fail; the policy must give up.
    agent = stack.host.spawn(["prove.z3"], {"env": {"HMS_PROVER_TIMEOUT": "-1"}})
    wait_until(
        lambda: any(
            e["action"] == "recovery.alert"
            for a in lineage_members(agent)
            for e in repository.audit_events(subject=a["id"])
        ),
        90,
        "the escalation",
    )
    time.sleep(5)  # no storm: nothing more is spawned after the alert
    members = lineage_members(agent)
    settings_max = 3
    assert len(members) <= settings_max + 1
    assert all(a["state"] == "FAILED" for a in members)


def test_wedged_pool_is_degraded_then_restarted(stack: LocalStack) -> None:
    from hms_celery.app import app

    agent = stack.spawn(["prove.z3"])
    stats = app.control.inspect([agent], timeout=2).stats() or {}
    old_children = stats[agent]["pool"]["processes"]
    os.kill(old_children[0], signal.SIGSTOP)  # the main process still beats; its pool is stuck
    # The audit log, not the live state: the restart may follow within a sweep.
    degraded = wait_until(
        lambda: [
            e for e in repository.audit_events(subject=agent) if e["action"] == "agent.degraded"
        ],
        40,
        "DEGRADED",
    )
    assert "wedged" in degraded[0]["details"]["reason"]
    assert "DEGRADED" in [t["to"] for t in registry.transitions(agent)]
    wait_until(
        lambda: any(
            e["action"] == "recovery.restart" for e in repository.audit_events(subject=agent)
        ),
        30,
        "the restart",
    )
    wait_until(lambda: registry.get_agent(agent)["state"] in ("READY", "BUSY"), 40, "recovery")
    stats = app.control.inspect([agent], timeout=2).stats() or {}
    assert set(stats[agent]["pool"]["processes"]).isdisjoint(old_children)
    task_id = client.submit_proof_task("after", "∀ x : ℝ, x * x ≥ 0")
    assert client.wait_for_result(task_id, timeout=60)["agent"] == agent


def test_sigkill_mid_batch_recovers_every_member_once(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed inside an ``hms.prove_batch`` leaves every member's attempt open (all
    were opened before the first proof): each member is run again and committed once."""
    from hms_celery.runtime import publish
    from hms_celery.verification.request import ProofRequest

    first = stack.spawn(["prove.z3"])
    second = stack.spawn(["prove.z3"])
    monkeypatch.setattr(publish, "BATCH_SPREAD", 1)  # 4 tasks: one message of 4
    requests = [
        (
            ProofRequest.build(theorem_id=f"slow-{i}", statement=SLOW, max_size=200, timeout=120),
            None,
        )
        for i in range(4)
    ]
    ids = client.submit_many(requests)

    def all_open() -> list[dict] | None:  # the four are read one by one, not in one snapshot
        found = [a for t in ids if (a := running_attempt(t))]
        return found if len(found) == len(ids) else None

    attempts = wait_until(all_open, 30, "the batch to start")
    victim = attempts[0]["agent"]
    assert victim in (first, second)
    assert {a["agent"] for a in attempts} == {victim}  # one message took all four
    assert len({a["started_at"] for a in attempts}) == 1  # opened in one transaction
    os.killpg(stack.pid(victim), signal.SIGKILL)

    statuses = client.wait_for_results(ids, timeout=240)
    for task_id in ids:
        status = statuses[task_id]
        assert status["state"] == "DONE" and status["verdict"] == "BOUNDED", status
        assert repository.count_results(task_id) == 1
        outcomes = [(a["agent"], a["outcome"]) for a in status["attempts"]]
        assert outcomes[0] == (victim, "LOST"), outcomes
        assert [o for _, o in outcomes].count("BOUNDED") == 1
        assert status["agent"] != victim
    assert registry.get_agent(victim)["state"] == "FAILED"
