"""Proof tasks through the real broker, a real worker process and the PostgreSQL store."""

from __future__ import annotations

import uuid
from fractions import Fraction

import pytest

from hms_celery import client
from hms_celery.errors import InfrastructureError, InputError, StatementError, UnknownTheoremError
from hms_celery.store import repository
from tests.support import wait_until

pytestmark = pytest.mark.services


def test_catalogue_claim_by_id_is_refuted_with_a_checked_counterexample(worker) -> None:
    task_id = client.submit_proof_task("drp-upper-original")
    status = client.wait_for_result(task_id, timeout=120)
    assert status["state"] == "DONE"
    assert status["verdict"] == "REFUTED"
    assert status["agent"] == worker.name
    cex = {k: v for k, v in status["counterexample"].items()}
    # Re-evaluate drp B p c r M ≤ B − rawReduction independently, in exact rationals.
    B, M = Fraction(cex["B"]), Fraction(cex["M"])
    p, c, r = ([Fraction(x) for x in cex[name]] for name in ("p", "c", "r"))
    raw = sum(pi * ci * ri for pi, ci, ri in zip(p, c, r, strict=True))
    assert 0 < M <= 1
    assert all(0 <= x <= 100 for x in p) and all(0 <= x <= 1 for x in c + r)
    assert B - raw * M > B - raw  # the claimed upper bound fails
    assert [a["agent"] for a in status["attempts"]] == [worker.name]
    timings = status["timings"]
    # The prover's own time is part of the task's: submitted → finished covers it.
    assert 0 < timings["prover_s"] <= timings["total_s"]


def test_fresh_statement_is_proved(worker) -> None:
    task_id = client.submit_proof_task("sq", "∀ (x y : ℝ), 0 ≤ x → x ≤ y → x * x ≤ y * y")
    status = client.wait_for_result(task_id, timeout=120)
    assert status["verdict"] == "PROVED"
    assert status["counterexample"] is None


def test_fresh_false_statement_under_axioms_is_refuted(worker) -> None:
    task_id = client.submit_proof_task("cube", "x * x * x > x", ["x > 0"], variables={"x": "ℝ"})
    status = client.wait_for_result(task_id, timeout=120)
    assert status["verdict"] == "REFUTED"
    x = Fraction(status["counterexample"]["x"])
    assert x > 0 and not x**3 > x


def test_malformed_statement_is_rejected_before_enqueueing(worker) -> None:
    with pytest.raises(StatementError) as info:
        client.submit_proof_task("bad", "∀ x : ℝ, (x + 1 ≤ x")
    assert info.value.line == 1 and info.value.column > 0
    with pytest.raises(UnknownTheoremError):
        client.submit_proof_task("no-such-claim")
    with pytest.raises(InputError):
        client.submit_proof_task("t", "1 = 1", timeout=-1)
    with pytest.raises(InputError):
        client.submit_proof_task("t", "1 = 1", strategy={"decider": {"tactic": "no-such"}})


def _wait_unrecorded(task_id: str, timeout: float = 60) -> dict:
    """Wait for a task the client did not record: its row appears when a worker takes it."""
    wait_until(lambda: repository.task_status(task_id), timeout, f"a worker recording {task_id}")
    return client.wait_for_result(task_id, timeout=timeout)


def test_garbage_published_around_the_client_gets_an_error_verdict(worker) -> None:
    from hms_celery.app import app

    task_id = str(uuid.uuid4())
    app.send_task("hms.prove", kwargs={"statement": "∀ x : ℝ, x +* 1"}, task_id=task_id)
    status = _wait_unrecorded(task_id)
    assert status["verdict"] == "ERROR"
    assert "1:13" in status["reason"]
    junk = str(uuid.uuid4())
    app.send_task("hms.prove", kwargs={"nonsense": 1}, task_id=junk)
    status = _wait_unrecorded(junk)
    assert status["verdict"] == "ERROR"
    assert "nonsense" in status["reason"]
    assert worker.alive()


def test_a_redelivered_task_commits_once(worker) -> None:
    """The same task id delivered twice (as after a redelivery): one result, one duplicate."""
    from hms_celery.app import app

    task_id = client.submit_proof_task("sps-bounds")
    first = client.wait_for_result(task_id, timeout=120)
    payload = first["payload"]
    app.send_task("hms.prove", kwargs=payload, task_id=task_id, queue="prove.z3")

    def second_attempt_closed() -> dict | None:
        status = client.query_task_status(task_id)
        attempts = status["attempts"]
        return status if len(attempts) == 2 and attempts[1]["ended_at"] else None

    status = wait_until(second_attempt_closed, 30, "the redelivered copy to close")
    assert [a["outcome"] for a in status["attempts"]] == ["PROVED", "DUPLICATE"]
    assert repository.count_results(task_id) == 1
    assert status["verdict"] == "PROVED"


def test_unreachable_broker_is_reported_with_its_url(stack_env, monkeypatch) -> None:
    from tests.support import configure_process

    configure_process({**stack_env, "HMS_BROKER_URL": "redis://127.0.0.1:1/0"})
    try:
        with pytest.raises(InfrastructureError) as info:
            client.submit_proof_task("t", "1 = 1")
        assert "127.0.0.1:1" in info.value.url
    finally:
        configure_process(stack_env)


def test_ping_reports_the_agents(worker) -> None:
    report = client.ping_supervisor()
    assert report["ok"], report["errors"]
    assert worker.name in report["agents"]
