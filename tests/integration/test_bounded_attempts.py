"""Issue 8, item 7: every proof attempt is bounded — measured through a real worker.

The hang cases (a tower of powers, a huge range sum, a nonlinear problem Z3's plain solver
will not give up on, hostile nesting) are submitted to a real ``celery worker`` on the real
Redis and PostgreSQL.  Each attempt must end within its time limit plus the sandbox's kill
margin (``sandbox.KILL_MARGIN_S``) with a verdict that is no claim (TIMEOUT, UNSUPPORTED or
ERROR), and the worker must be alive afterwards and still prove a normal claim.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from hms_celery import client
from hms_celery.errors import StatementError
from hms_celery.verification.bignum import decimal_to_int
from hms_celery.verification.sandbox import KILL_MARGIN_S

from .test_proof_tasks import _wait_unrecorded

pytestmark = [pytest.mark.services, pytest.mark.slow]

TIMEOUT_S = 3.0
#: What an attempt's wall time (the store's started_at → ended_at) adds to the prover's part:
#: the store's own writes (begin and commit) and, for the first request of a pool process or
#: the one after a kill, the start of a fresh prover child (~0.4 s; not part of the limit).
BOOKKEEPING_S = 1.5
#: Scheduling slack of the kill itself on a loaded 2-core machine (the parent's timer fires at
#: limit + margin; the kill and the reply follow within this).
KILL_SLACK_S = 0.5

HANG_CASES = {
    "tower": ("(3 : ℕ) ^ 3 ^ 3 ^ 3 ^ 3 > 0", None, "UNSUPPORTED", "MAX_NUMBER_BITS"),
    "range": ("∑ i in Finset.range 500000000, i ≥ 0", None, "UNSUPPORTED", "MAX_UNROLL"),
    "stubborn": ("∀ x : ℝ, x ^ 1501 ≥ -1", "z3-default", "TIMEOUT", ""),
}


def _wall_s(attempt: dict) -> float:
    started = datetime.fromisoformat(attempt["started_at"])
    ended = datetime.fromisoformat(attempt["ended_at"])
    return (ended - started).total_seconds()


def _assert_bounded(status: dict, limit: float = TIMEOUT_S) -> None:
    """The measured bound: the sandbox's wait (request sent → reply or kill) is at most the
    limit plus the margin, and the whole attempt adds only the store's bookkeeping."""
    (attempt,) = status["attempts"]
    box = status["stats"]["sandbox"]
    print(  # the measurement, for `pytest -s`
        f"{status['theorem_id']}: {status['verdict']} sandbox wait {box['wall_s']:.3f} s "
        f"(killed: {box['killed']}), attempt {_wall_s(attempt):.3f} s, limit {limit:g} s"
    )
    assert box["limit_s"] == limit and box["margin_s"] == KILL_MARGIN_S
    assert box["wall_s"] <= limit + KILL_MARGIN_S + KILL_SLACK_S, box
    assert _wall_s(attempt) <= limit + KILL_MARGIN_S + BOOKKEEPING_S, attempt


def test_hang_cases_end_within_their_limit_and_the_worker_survives(worker) -> None:
    warm = client.submit_proof_task("warm", "∀ x : ℝ, x * x ≥ 0")
    assert client.wait_for_result(warm, timeout=60)["verdict"] == "PROVED"
    submitted = {
        name: client.submit_proof_task(f"hang-{name}", text, strategy=strategy, timeout=TIMEOUT_S)
        for name, (text, strategy, _, _) in HANG_CASES.items()
    }
    results = client.wait_for_results(submitted.values(), timeout=120)
    for name, task_id in submitted.items():
        _, _, verdict, words = HANG_CASES[name]
        status = results[task_id]
        assert status["verdict"] == verdict, (name, status["reason"])
        assert words in status["reason"], (name, status["reason"])
        _assert_bounded(status)
    stubborn = results[submitted["stubborn"]]
    if stubborn["stats"]["sandbox"]["killed"]:  # Z3 ignored both its timeout and the interrupt
        assert "overran its time limit of 3 s and was stopped" in stubborn["reason"]
    assert worker.alive()
    after = client.submit_proof_task("after-hangs", "∀ x : ℝ, x * x ≥ 0")
    status = client.wait_for_result(after, timeout=60)
    assert status["verdict"] == "PROVED" and status["agent"] == worker.name
    assert worker.alive()


def test_hostile_nesting_and_long_literals_are_bounded_too(worker) -> None:
    from hms_celery.app import app

    deep = "¬" * 4000 + "(1 = 1)"
    with pytest.raises(StatementError):  # the client refuses it before enqueueing …
        client.submit_proof_task("deep", deep)
    task_id = str(uuid.uuid4())  # … so publish it around the client, as a hostile one would
    app.send_task("hms.prove", kwargs={"statement": deep, "timeout": TIMEOUT_S}, task_id=task_id)
    status = _wait_unrecorded(task_id)
    assert status["verdict"] == "ERROR", status["reason"]
    assert "1:" in status["reason"]  # the parser says where
    _assert_bounded(status)

    literal = "7" * 4301  # past Python's 4300-digit int↔str limit
    long_id = client.submit_proof_task("long", f"∀ x : ℤ, x ≠ {literal}", timeout=TIMEOUT_S)
    status = client.wait_for_result(long_id, timeout=60)
    assert status["verdict"] == "REFUTED", status["reason"]  # the one right answer
    assert decimal_to_int(status["counterexample"]["x"]) == decimal_to_int(literal)
    _assert_bounded(status)
    assert worker.alive()
