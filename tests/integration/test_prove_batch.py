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


def test_a_batch_out_of_time_commits_what_it_proved_and_releases_the_rest(
    worker, monkeypatch
) -> None:
    """The batch's soft limit (its members' limits added up) runs out while its stubborn
    members overrun: the proofs done are committed by the batch, the others are released and
    proved alone — nothing is lost, run twice to a result, or made up."""
    from hms_celery.runtime import publish
    from hms_celery.settings import reset_settings

    # Z3's plain solver ignores its 1 s timeout here: each attempt is killed after 1 + 2 s,
    # past its share of the batch's limit (1 + 0.5 s).
    stubborn = {"statement": "∀ x : ℝ, x ^ 1501 ≥ -1", "strategy": "z3-default", "timeout": 1}
    requests = [ProofRequest.build(theorem_id=f"slow-{i}", **stubborn) for i in range(3)]
    requests += [
        ProofRequest.build(theorem_id=f"fast-{i}", statement=f"∀ x : ℝ, x + {i} - {i} = x",
                           timeout=1)
        for i in range(2)
    ]  # fmt: skip
    monkeypatch.setenv("HMS_TIME_LIMIT_MARGIN", "0.5")
    monkeypatch.setattr(publish, "BATCH_SPREAD", 1)  # five tasks, one message
    reset_settings()
    try:
        ids = client.submit_many([(r, None) for r in requests])
        statuses = client.wait_for_results(ids, timeout=120)
    finally:
        monkeypatch.delenv("HMS_TIME_LIMIT_MARGIN")
        reset_settings()
    members = [statuses[t] for t in ids]
    assert len({s["attempts"][0]["started_at"] for s in members}) == 1  # one batch
    # Committed by the batch: a prefix, one attempt each; released: the rest, each with
    # its RETRY and then one attempt alone (a kill and a fresh prover child take more than
    # a member's share, so where the limit falls depends on the machine, not the order).
    in_batch = [len(s["attempts"]) == 1 for s in members]
    assert in_batch[0] and not in_batch[-1] and in_batch == sorted(in_batch, reverse=True)
    for status, alone in zip(members, in_batch, strict=True):
        outcomes = [a["outcome"] for a in status["attempts"]]
        assert outcomes[-1] == status["verdict"]
        if not alone:
            assert outcomes[0] == "RETRY" and len(outcomes) == 2
            assert "soft time limit ran out before this proof ran" in status["attempts"][0]["error"]
    assert [s["verdict"] for s in members] == ["TIMEOUT"] * 3 + ["PROVED"] * 2
    assert all(repository.count_results(t) == 1 for t in ids)
