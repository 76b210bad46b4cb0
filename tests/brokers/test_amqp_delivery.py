"""Delivery on RabbitMQ: the broker's own redelivery of a dead worker's task (no supervisor
running), and a publish the broker refuses (publisher confirms) failing loudly.

A module of its own, so its vhost has no other worker that could take the task.
"""

from __future__ import annotations

import os
import signal
import uuid
from urllib.parse import unquote, urlsplit

import pytest
from sqlalchemy import select

from hms_celery import client
from hms_celery.errors import InfrastructureError
from hms_celery.store import repository
from hms_celery.store.db import session_scope
from hms_celery.store.models import Task
from tests.support import BOUNDED_ONLY, WorkerProcess, rabbitmqctl, wait_until

pytestmark = pytest.mark.services


@pytest.mark.slow
def test_a_dead_workers_task_comes_back_from_rabbitmq(amqp_env: dict[str, str]) -> None:
    """No supervisor runs here: the redelivery is RabbitMQ's own (the unacknowledged message
    of a closed connection), which the supervisor relies on instead of re-publishing."""
    first = WorkerProcess(amqp_env, queues="prove.z3", concurrency=1, new_session=True)
    second: WorkerProcess | None = None
    try:
        first.wait_ready()
        task_id = client.submit_proof_task("amqp-lost", BOUNDED_ONLY, max_size=200, timeout=120)
        wait_until(
            lambda: any(
                a["ended_at"] is None for a in client.query_task_status(task_id)["attempts"]
            ),
            60,
            "the proof to start",
        )
        second = WorkerProcess(amqp_env, queues="prove.z3", concurrency=1)
        second.wait_ready()
        os.killpg(first.process.pid, signal.SIGKILL)  # the worker and its pool
        status = client.wait_for_result(task_id, timeout=180)
        assert (status["state"], status["verdict"]) == ("DONE", "BOUNDED")
        assert repository.count_results(task_id) == 1
        assert status["agent"] == second.name
        agents = [a["agent"] for a in status["attempts"]]
        assert agents == [first.name, second.name]
        # Closed by the winner's commit, not LOST by a supervisor (none runs here).
        assert [a["outcome"] for a in status["attempts"]] == ["ABANDONED", "BOUNDED"]
        events = repository.audit_events(subject=task_id, action="task.requeued")
        assert events == []
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_a_publish_rabbitmq_refuses_is_rejected_not_lost(amqp_env: dict[str, str]) -> None:
    """A full queue that rejects publishes nacks the message: with publisher confirms the
    client sees it (exit 3, the task REJECTED in the store) instead of a silent loss."""
    vhost = unquote(urlsplit(amqp_env["HMS_BROKER_URL"]).path[1:])
    rabbitmqctl(
        "set_policy", "-p", vhost, "--apply-to", "queues", "hms-full", r"^prove\.cvc5$",
        '{"max-length": 0, "overflow": "reject-publish"}',
    )  # fmt: skip
    theorem = f"amqp-nacked-{uuid.uuid4().hex[:6]}"
    try:
        with pytest.raises(InfrastructureError) as raised:
            client.submit_proof_task(theorem, "∀ x : ℝ, x * x ≥ 0", backend="cvc5")
        assert raised.value.exit_code == 3
        with session_scope() as session:
            rows = session.execute(
                select(Task.status, Task.error).where(Task.theorem_id == theorem)
            ).all()
        assert [r.status for r in rows] == ["REJECTED"]
        assert "nack" in (rows[0].error or "").lower(), rows[0].error
    finally:
        rabbitmqctl("clear_policy", "-p", vhost, "hms-full")
