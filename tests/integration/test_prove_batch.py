"""Proof tasks submitted together run as ``hms.prove_batch`` messages on a real worker, and
every member ends exactly as a task published alone would."""

from __future__ import annotations

from fractions import Fraction

import pytest

from hms_celery import client
from hms_celery.store import repository
from hms_celery.verification.request import ProofRequest

pytestmark = pytest.mark.services


def _requests() -> list[tuple[ProofRequest, str | None]]:
    proved = [f"∀ x : ℝ, x + {k} - {k} = x" for k in range(12)]
    refuted = [f"∀ x : ℝ, x * x > {k}" for k in range(12)]
    return [
        (ProofRequest.build(theorem_id=f"batch-{i}", statement=s), None)
        for i, s in enumerate(proved + refuted)
    ]


def test_a_submission_of_many_is_proved_in_batches(worker) -> None:
    requests = _requests()
    ids = client.submit_many(requests)
    statuses = client.wait_for_results(ids, timeout=180)
    verdicts = [statuses[t]["verdict"] for t in ids]
    assert verdicts == ["PROVED"] * 12 + ["REFUTED"] * 12
    for task_id, (request, _) in zip(ids, requests, strict=True):
        status = statuses[task_id]
        assert status["state"] == "DONE" and status["theorem_id"] == request.theorem_id
        assert [(a["agent"], a["outcome"]) for a in status["attempts"]] == [
            (worker.name, status["verdict"])
        ]
        assert repository.count_results(task_id) == 1
        if status["verdict"] == "PROVED":
            assert status["confirmed_by"]["status"] == "confirmed"
        else:  # re-evaluated here, in exact rationals: x·x > k fails
            k = int(request.statement.rsplit(" ", 1)[1])
            x = Fraction(status["counterexample"]["x"])
            assert not x * x > k
    # 24 tasks went out as 8 messages of 3 (24 // 8): the members of one message share the
    # time their attempts were opened, in one transaction.
    opened = {statuses[t]["attempts"][0]["started_at"] for t in ids}
    assert len(opened) == 8


def test_with_batches_of_one_every_task_goes_alone(worker, monkeypatch) -> None:
    from hms_celery.settings import reset_settings

    monkeypatch.setenv("HMS_PROVE_BATCH", "1")
    reset_settings()
    try:
        ids = client.submit_many(_requests()[:16])
        statuses = client.wait_for_results(ids, timeout=180)
    finally:
        monkeypatch.delenv("HMS_PROVE_BATCH")
        reset_settings()
    assert len({statuses[t]["attempts"][0]["started_at"] for t in ids}) == 16
    assert all(statuses[t]["verdict"] in ("PROVED", "REFUTED") for t in ids)
