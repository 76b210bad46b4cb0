"""HMS on RabbitMQ: real ``celery worker`` processes on a RabbitMQ virtual host of the tests'
own, HMS's coordination state in a Redis database (HMS_REDIS_URL), the session's PostgreSQL.

Every skill runs over AMQP, proofs commit once on every backend, ``hms ping`` and the queue
depths work, and two stacks on different vhosts cannot share one coordination database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from kombu import Connection, Exchange, Producer, Queue

from hms_celery import client
from hms_celery.healing import stack_claim
from hms_celery.healing.heartbeats import redis_client
from hms_celery.metrics.collector import HMSCollector
from hms_celery.runtime.skills import load_skills, reload_skills
from hms_celery.settings import load_settings
from hms_celery.store import repository
from tests.support import (
    WorkerProcess,
    rabbitmq_vhost,
)

pytestmark = pytest.mark.services

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins" / "hms_echo_skill"
SQUARE = "∀ x : ℝ, x * x ≥ 0"


@pytest.fixture(scope="module")
def echo_installed() -> Iterator[None]:
    """The echo plugin skill in this process too (the worker gets it through PYTHONPATH)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(PLUGIN_DIR))
        reload_skills()
        yield
    reload_skills()


@pytest.fixture(scope="module")
def all_skills_worker(amqp_env: dict[str, str], echo_installed: None) -> Iterator[WorkerProcess]:
    """One worker consuming every skill's queue over AMQP."""
    path = [str(PLUGIN_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**amqp_env, "PYTHONPATH": os.pathsep.join(path)}
    queues = ",".join(sorted({s.queue for s in load_skills().values()}))
    proc = WorkerProcess(env, queues=queues, concurrency=2)
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


#: A payload for each skill's generic task, and what its result must show.
SKILL_CASES: dict[str, tuple[dict[str, Any], Any]] = {
    "prove.z3": ({"theorem_id": "amqp-z3", "statement": SQUARE}, lambda r: r["verdict"]),
    "prove.cvc5": (
        {"theorem_id": "amqp-cvc5", "statement": SQUARE, "backend": "cvc5"},
        lambda r: r["verdict"],
    ),
    "health": ({}, lambda r: r["status"]),
    "supervisor": ({}, lambda r: r["ok"]),
    "ga": (
        {"strategy": "default", "instances": [{"id": "sq", "request": {"statement": SQUARE}}]},
        lambda r: [e["verdict"] for e in r["evaluations"]],
    ),
    "echo": ({"text": "héllo", "n": [1, 2]}, lambda r: r["echo"]),
}
EXPECTED = {
    "prove.z3": "PROVED",
    "prove.cvc5": "PROVED",
    "health": "Healthy",
    "supervisor": True,
    "ga": ["PROVED"],
    "echo": {"text": "héllo", "n": [1, 2]},
}


def test_every_skill_runs_over_amqp(all_skills_worker: WorkerProcess) -> None:
    assert set(SKILL_CASES) == set(load_skills()), "a skill without an AMQP case"
    seen = {}
    for skill_id, (payload, pick) in SKILL_CASES.items():
        task_id = client.run_skill(skill_id, payload)
        seen[skill_id] = pick(client.wait_skill_result(task_id, timeout=120))
    assert seen == EXPECTED
    assert all_skills_worker.alive()


@pytest.mark.parametrize("backend", ["z3", "cvc5", "race"])
def test_proofs_commit_once_over_amqp(all_skills_worker: WorkerProcess, backend: str) -> None:
    task_id = client.submit_proof_task(f"amqp-{backend}", SQUARE, backend=backend)
    status = client.wait_for_result(task_id, timeout=120)
    assert (status["state"], status["verdict"]) == ("DONE", "PROVED")
    assert repository.count_results(task_id) == 1
    assert status["agent"] == all_skills_worker.name


def test_ping_reaches_the_agents_over_amqp(all_skills_worker: WorkerProcess) -> None:
    report = client.ping_supervisor(timeout=2)
    assert report["ok"], report["errors"]
    assert report["broker"].startswith("amqp://") and "guest:guest" not in report["broker"]
    assert all_skills_worker.name in report["agents"]


def test_the_worker_claims_the_coordination_redis(all_skills_worker: WorkerProcess) -> None:
    holder = redis_client().get(stack_claim.CLAIM_KEY)
    assert holder is not None
    assert holder.decode() == stack_claim.store_identity(load_settings())
    assert " via amqp://" in holder.decode()


def test_queue_depths_come_from_a_passive_declare_on_amqp(amqp_env: dict[str, str]) -> None:
    with rabbitmq_vhost("hms_depth") as broker:
        queue = Queue("prove.cvc5", Exchange("prove.cvc5", type="direct"), "prove.cvc5")
        with Connection(broker) as conn:
            producer = Producer(conn.channel())
            for n in range(3):
                producer.publish({"n": n}, routing_key="prove.cvc5", declare=[queue],
                                 exchange=queue.exchange, delivery_mode=2)  # fmt: skip
        collector = HMSCollector(database_url=amqp_env["HMS_DATABASE_URL"], broker_url=broker)
        metrics = {m.name: m for m in collector.collect()}
    depth = {s.labels["queue"]: s.value for s in metrics["hms_queue_depth"].samples}
    assert depth["prove.cvc5"] == 3
    assert depth["prove.z3"] == 0  # never declared there: a 404 reads as empty
    up = {s.labels["component"]: s.value for s in metrics["hms_up"].samples}
    assert up == {"store": 1, "broker": 1}
    assert "hms_sweep_seconds" in metrics  # read from HMS_REDIS_URL, not the broker


def test_two_vhosts_cannot_share_one_coordination_database(amqp_env: dict[str, str]) -> None:
    url = amqp_env["HMS_REDIS_URL"]
    mine = load_settings()
    other = load_settings(broker_url=mine.effective_broker_url + "_other", redis_url=url)
    assert other.stack_id != mine.stack_id
    scratch = redis.Redis.from_url(url)
    held = scratch.get(stack_claim.CLAIM_KEY)
    if held is None:  # no agent of this module's stack holds it right now: take it
        stack_claim.claim(scratch, mine, claimant="test")
    with pytest.raises(stack_claim.StackConflictError, match="HMS_REDIS_URL") as raised:
        stack_claim.claim(scratch, other, claimant="intruder")
    assert "coordination Redis" in str(raised.value)
    with pytest.raises(stack_claim.StackConflictError):
        stack_claim.check(scratch, other)
    stack_claim.check(scratch, mine)  # the holder itself passes
    if held is None:
        stack_claim.release(scratch, "test", mine)
