"""Two stacks on one machine never judge each other's agents.

Stack A (this process's agent host, Redis database 3) and stack B (plain worker processes and
its own beat, Redis database 4) each run a prover and a supervisor agent with fast sweeps —
once over one shared store (the test suite's own situation: one PostgreSQL database, several
broker databases), once over two stores.  A killed prover of A is recovered by A; a killed
prover of B is marked FAILED by B; and no other agent of either stack is ever FAILED or
TERMINATED — with the supervisor judging every agent in its store, A's sweeps would fail B's
agents for want of heartbeats (B's heartbeats are in B's broker) within seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine, text

from hms_celery.agents import registry
from hms_celery.client.local_stack import LocalStack
from hms_celery.healing.stack_claim import CLAIM_KEY
from hms_celery.settings import broker_identity
from hms_celery.store.db import safe_url
from hms_celery.store.migrate import upgrade
from tests.support import FAST_SETTINGS, WorkerProcess, configure_process, wait_until

pytestmark = [pytest.mark.services, pytest.mark.slow]


@dataclass
class PlainStack:
    """Stack B: a supervisor worker, a prover worker and beat as plain child processes."""

    env: dict[str, str]
    data_dir: Path
    workers: dict[str, WorkerProcess] = field(default_factory=dict)
    beat: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.workers["supervisor"] = WorkerProcess(self.env, queues="supervisor", concurrency=1)
        self.workers["prover"] = WorkerProcess(self.env, queues="prove.z3", concurrency=1)
        log = (self.data_dir / "beat.log").open("wb")
        self.beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "hms_celery", "beat",
             "-s", str(self.data_dir / "beat-schedule"), "--pidfile=", "-l", "INFO"],
            env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()

    def stop(self) -> None:
        if self.beat is not None and self.beat.poll() is None:
            self.beat.terminate()
            self.beat.wait(20)
        for worker in self.workers.values():
            worker.stop()


def _agents(store: str) -> dict[str, dict[str, Any]]:
    engine = create_engine(store)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, state, stack, last_heartbeat_at FROM agents"))
            return {r.id: dict(r._mapping) for r in rows}
    finally:
        engine.dispose()


def _failures(store: str) -> list[tuple[str, str, str]]:
    """Every transition into FAILED or TERMINATED: (agent, state, reason)."""
    engine = create_engine(store)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT agent_id, to_state, reason FROM agent_transitions "
                    "WHERE to_state IN ('FAILED', 'TERMINATED') ORDER BY id"
                )
            )
            return [(r.agent_id, r.to_state, r.reason) for r in rows]
    finally:
        engine.dispose()


@pytest.fixture(params=["shared-store", "two-stores"])
def stacks(
    request: pytest.FixtureRequest,
    redis_url: str,
    stack_env: dict[str, str],
    tmp_path: Path,
) -> Iterator[tuple[LocalStack, dict[str, str], PlainStack, dict[str, str], set[str]]]:
    base = redis_url.rsplit("/", 1)[0]
    broker_a, broker_b = f"{base}/3", f"{base}/4"  # this module's databases
    for url in (broker_a, broker_b):
        redis.Redis.from_url(url).flushdb()
    store_a = stack_env["HMS_DATABASE_URL"]
    store_b = store_a
    if request.param == "two-stores":
        store_b = f"sqlite:///{tmp_path / 'b.db'}"
        upgrade(store_b)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    env_a = {
        **stack_env,
        **FAST_SETTINGS,
        "HMS_BROKER_URL": broker_a,
        "HMS_DATA_DIR": str(tmp_path / "a"),
    }
    env_b = {
        **env_a,
        "HMS_BROKER_URL": broker_b,
        "HMS_DATABASE_URL": store_b,
        "HMS_DATA_DIR": str(tmp_path / "b"),
    }
    plain = PlainStack(env_b, tmp_path / "b")
    configure_process(env_a)
    earlier = set(_agents(store_a)) | set(_agents(store_b))  # other tests' agents (stopped)
    local = None
    try:
        plain.start()
        local = LocalStack(env_a, tmp_path / "a")
        yield local, env_a, plain, env_b, earlier
    finally:
        if local is not None:
            local.close()
        plain.stop()
        configure_process(stack_env)


def test_supervisors_of_two_stacks_never_fail_each_others_agents(
    stacks: tuple[LocalStack, dict[str, str], PlainStack, dict[str, str], set[str]],
) -> None:
    local, env_a, plain, env_b, earlier = stacks
    store_a, store_b = env_a["HMS_DATABASE_URL"], env_b["HMS_DATABASE_URL"]
    stack_a, stack_b = (broker_identity(e["HMS_BROKER_URL"]) for e in (env_a, env_b))
    supervisor_a = local.spawn(["supervisor"])
    prover_a = local.spawn(["prove.z3"])
    a_agents = {supervisor_a, prover_a}
    b_agents = {w.name for w in plain.workers.values()}

    def b_ready() -> bool:
        agents = _agents(store_b)
        return all(agents.get(n, {}).get("state") == "READY" for n in b_agents)

    wait_until(b_ready, 90, "stack B's agents READY")
    # Each agent records its stack: the broker database its heartbeats go to.
    agents = _agents(store_a) | _agents(store_b)
    assert {agents[n]["stack"] for n in a_agents} == {stack_a}
    assert {agents[n]["stack"] for n in b_agents} == {stack_b}

    # Both supervisors have swept with heartbeats (a sweep stores the beats it saw) — and with
    # one store each sees the other's agents: long enough for the old sweep to fail them.
    def swept_with_heartbeats() -> bool:
        agents = _agents(store_a) | _agents(store_b)
        return all(agents[n]["last_heartbeat_at"] is not None for n in a_agents | b_agents)

    wait_until(swept_with_heartbeats, 60, "sweeps of both stacks with heartbeats")

    # A prover of A dies: A marks it FAILED and respawns it.
    os.killpg(local.pid(prover_a), signal.SIGKILL)

    def respawned_a() -> list[str]:
        return [
            agent_id
            for agent_id, row in _agents(store_a).items()
            if agent_id not in a_agents | b_agents | earlier
            and row["stack"] == stack_a
            and row["state"] == "READY"
        ]

    replacement = wait_until(respawned_a, 90, "stack A's respawned prover")[0]
    assert _agents(store_a)[prover_a]["state"] == "FAILED"

    # A prover of B dies: B's supervisor (no agent host there) marks it FAILED.
    plain.workers["prover"].process.kill()
    prover_b = plain.workers["prover"].name
    wait_until(lambda: _agents(store_b)[prover_b]["state"] == "FAILED", 60, "B failing its prover")

    # Nobody else of either stack was ever FAILED or TERMINATED, in either store (a shared
    # store also holds other test modules' agents, of other stacks).
    ours = {
        agent_id
        for store in {store_a, store_b}
        for agent_id, row in _agents(store).items()
        if row["stack"] in (stack_a, stack_b) and agent_id not in earlier
    }
    failures = [f for store in {store_a, store_b} for f in _failures(store) if f[0] in ours]
    ended = {agent for agent, _, _ in failures}
    assert ended == {prover_a, prover_b}, failures
    for agent in a_agents | b_agents | {replacement}:
        assert agent in (prover_a, prover_b) or _state(agent, store_a, store_b) in (
            "READY",
            "BUSY",
        )


def _state(agent: str, *stores: str) -> str | None:
    for store in stores:
        row = _agents(store).get(agent)
        if row:
            return row["state"]
    return None


def test_a_second_store_on_one_broker_database_is_refused(
    redis_url: str, stack_env: dict[str, str], tmp_path: Path
) -> None:
    """Same Redis database, different stores: the second stack's agents and clients refuse,
    naming both stores; the first stack's agent keeps its database."""
    broker = redis_url.rsplit("/", 1)[0] + "/3"
    client = redis.Redis.from_url(broker)
    client.flushdb()
    env_a = {**stack_env, "HMS_BROKER_URL": broker, "HMS_DATA_DIR": str(tmp_path)}
    store_b = f"sqlite:///{tmp_path / 'b.db'}"
    upgrade(store_b)
    env_b = {**env_a, "HMS_DATABASE_URL": store_b}
    worker_a = WorkerProcess(env_a, queues="prove.z3", concurrency=1)
    try:
        mine = safe_url(stack_env["HMS_DATABASE_URL"])
        wait_until(lambda: client.get(CLAIM_KEY) == mine.encode(), 60, "stack A's claim")
        bin_dir = Path(sys.executable).parent
        attempts = {
            "worker": [str(bin_dir / "celery"), "-A", "hms_celery", "worker", "-Q", "prove.z3",
                       "-n", f"second-{os.getpid()}@%h", "--without-mingle", "--without-gossip"],
            "prove": [str(bin_dir / "hms"), "prove", "∀ x : ℝ, x ≤ x + 1"],
        }  # fmt: skip
        for name, args in attempts.items():
            done = subprocess.run(
                args,
                env={**os.environ, **env_b},
                capture_output=True,
                text=True,
                timeout=120,
                stdin=subprocess.DEVNULL,
            )
            assert done.returncode == 2, (name, done.stdout, done.stderr)
            assert f"already serves the stack whose store is {mine}" in done.stderr, done.stderr
            assert safe_url(store_b) in done.stderr and "own Redis database" in done.stderr
        assert worker_a.alive()
        assert client.get(CLAIM_KEY) == mine.encode()

        # A stack on another database but the same store may not take A's agent's name.
        wait_until(
            lambda: (registry.get_agent(worker_a.name) or {}).get("state") == "READY",
            60,
            "stack A's agent READY",
        )
        other_db = broker.rsplit("/", 1)[0] + "/4"
        redis.Redis.from_url(other_db).flushdb()
        clash = subprocess.run(
            [str(bin_dir / "celery"), "-A", "hms_celery", "worker", "-Q", "prove.z3",
             "-n", worker_a.name, "--without-mingle", "--without-gossip"],
            env={**os.environ, **env_a, "HMS_BROKER_URL": other_db},
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert clash.returncode == 2, clash.stdout + clash.stderr
        assert f"agent name {worker_a.name!r} is in use" in clash.stderr, clash.stderr
        assert registry.get_agent(worker_a.name)["stack"] == broker_identity(broker)
        engine = create_engine(store_b)
        with engine.connect() as conn:  # nothing reached the second store
            assert conn.execute(text("SELECT count(*) FROM tasks")).scalar() == 0
            assert conn.execute(text("SELECT count(*) FROM agents")).scalar() == 0
        engine.dispose()
    finally:
        worker_a.stop()
