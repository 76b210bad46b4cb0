"""Circuit breakers: outcomes → board → routing, with a real worker and the real broker."""

from __future__ import annotations

import time

import pytest

from hms_celery import client
from hms_celery.errors import InfrastructureError
from hms_celery.healing import breakers
from hms_celery.policy import BreakerBoard, BreakerState
from tests.support import WorkerProcess, configure_process, stack_redis_url, wait_until


def test_apply_opens_after_k_failures_and_half_opens_after_cooldown() -> None:
    closed, open_, half = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
    board = BreakerBoard(threshold=3, cooldown_s=10)
    key = breakers.backend_key("z3")
    fail = [{"key": key, "ok": False, "at": 100.0 + i} for i in range(3)]
    assert breakers.apply(board, fail[:2], now=102) == {}
    assert breakers.apply(board, fail[2:], now=103) == {key: (closed, open_)}
    assert board.open_keys(105) == [key]
    assert breakers.apply(board, [], now=114) == {key: (open_, half)}
    ok = [{"key": key, "ok": True, "at": 115.0}]
    assert breakers.apply(board, ok, now=115) == {key: (half, closed)}


def _consumes(agent: str, queue: str) -> bool:
    from hms_celery.app import app

    replies = app.control.inspect([agent], timeout=1.0).active_queues() or {}
    return any(q["name"] == queue for q in replies.get(agent, []))


@pytest.mark.services
def test_open_breakers_stop_routing_and_recover(stack_env: dict[str, str]) -> None:
    # A broker database of its own: the session's `worker` fixture must not take the trial.
    broker = stack_redis_url(stack_env["HMS_BROKER_URL"])
    env = {
        **stack_env,
        "HMS_BROKER_URL": broker,
        "HMS_BREAKER_THRESHOLD": "3",
        "HMS_BREAKER_COOLDOWN": "2",
    }
    configure_process(env)
    from hms_celery.agents import registry
    from hms_celery.healing.heartbeats import redis_client
    from hms_celery.healing.supervisor import sweep

    redis = redis_client()
    redis.flushdb()
    worker = WorkerProcess(env)
    try:
        worker.wait_ready()
        wait_until(lambda: registry.get_agent(worker.name), 30, "the worker to register")
        assert _consumes(worker.name, "prove.z3")
        for _ in range(3):
            breakers.report_outcome(redis, worker.name, "z3", ok=False)
        opened = time.time()
        summary = sweep(redis, now=opened)
        assert set(summary["open_breakers"]) == {
            breakers.agent_key(worker.name),
            breakers.backend_key("z3"),
        }
        # Remote control is asynchronous: the worker stops consuming soon after.
        wait_until(lambda: not _consumes(worker.name, "prove.z3"), 10, "the consumer cancelled")
        with pytest.raises(InfrastructureError, match="circuit breaker is open"):
            client.submit_proof_task("t", "∀ x : ℝ, x * x ≥ 0")

        summary = sweep(redis, now=opened + 2.1)  # after the cooldown: half-open, one trial
        assert summary["open_breakers"] == []
        wait_until(lambda: _consumes(worker.name, "prove.z3"), 10, "the consumer added again")
        task_id = client.submit_proof_task("t", "∀ x : ℝ, x * x ≥ 0")
        trial = client.wait_for_result(task_id, timeout=60)
        assert (trial["verdict"], trial["agent"]) == ("PROVED", worker.name)
        sweep(redis)  # the trial succeeded: both breakers close
        from hms_celery.healing.supervisor import _load_memory
        from hms_celery.settings import get_settings

        board = _load_memory(get_settings()).breakers
        assert board.get(breakers.backend_key("z3")).state is BreakerState.CLOSED
        assert board.get(breakers.agent_key(worker.name)).state is BreakerState.CLOSED
    finally:
        worker.stop()
        redis.delete(breakers.EVENTS_KEY, breakers.OPEN_KEY)
        configure_process(stack_env)


@pytest.mark.services
def test_only_one_sweep_runs_at_a_time(stack_env: dict[str, str]) -> None:
    from hms_celery.healing.heartbeats import redis_client
    from hms_celery.healing.supervisor import LOCK_KEY, sweep_task

    redis = redis_client()
    held = redis.lock(LOCK_KEY, timeout=30)
    assert held.acquire(blocking=False)
    try:
        assert sweep_task.run(reason="second beat") == {"skipped": "another sweep holds the lock"}
    finally:
        held.release()
    assert "duration_ms" in sweep_task.run(reason="alone")
