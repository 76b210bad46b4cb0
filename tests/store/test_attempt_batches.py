"""A batch's attempt writes (store/attempt_batches.py) leave exactly the rows the one-task
writes leave, on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

from hms_celery.store import repository
from hms_celery.store.attempt_batches import Finished, Member, begin_attempts, commit_results
from hms_celery.verification.verdict import ProofOutcome, Verdict

AGENT = "prove-z3-batch@test"


def _submit() -> str:
    task_id = str(uuid.uuid4())
    repository.record_submission(
        task_id, queue="prove.z3", payload={"statement": "1 = 1"}, theorem_id="t", family="f",
        actor="test",
    )  # fmt: skip
    return task_id


def _state(task_id: str) -> dict[str, Any]:
    """What a task's status view says, without ids and time stamps."""
    status = repository.task_status(task_id)
    assert status is not None
    return {
        "state": status["state"],
        "verdict": status["verdict"],
        "reason": status["reason"],
        "attempts": [
            (a["number"], a["agent"], a["outcome"], a["error"]) for a in status["attempts"]
        ],
        "open": [a["number"] for a in status["attempts"] if a["ended_at"] is None],
        "audit": [
            (e["action"], e["details"].get("attempt"))
            for e in repository.audit_events(subject=task_id)
            if e["action"] in ("result.duplicate", "proof.solvers_disagree")
        ],
        "results": repository.count_results(task_id),
    }


OUTCOMES = {
    "proved": ProofOutcome(Verdict.PROVED, reason="unsat", confirmed_by={"solver": "cvc5"}),
    "refuted": ProofOutcome(Verdict.REFUTED, reason="model", counterexample={"x": "1/2"}),
    "error": ProofOutcome(Verdict.ERROR, reason="bad input"),
    "disagree": ProofOutcome(
        Verdict.ERROR, reason="solvers disagree: z3 says unsat, cvc5 says sat", stats={"d": 1}
    ),
}


def _scenario(task_ids: list[str]) -> None:
    """The same starting rows for both paths: task 0 already has a result (its copy here is a
    duplicate), task 1 has an attempt left open by a lost process, the others are fresh."""
    first = repository.begin_attempt(
        task_ids[0], agent="other@x", pid=1, payload={}, queue="prove.z3"
    )
    repository.commit_result(
        task_ids[0], attempt_number=first.number, agent="other@x", theorem_id="t",
        outcome=OUTCOMES["proved"],
    )  # fmt: skip
    repository.begin_attempt(task_ids[1], agent="lost@x", pid=2, payload={}, queue="prove.z3")


def test_a_batch_writes_what_one_task_at_a_time_writes(store_url: str) -> None:
    kinds = ["proved", "refuted", "error", "disagree", "proved"]
    one, many = [_submit() for _ in kinds], [_submit() for _ in kinds]
    _scenario(one)
    _scenario(many)
    for task_id, kind in zip(one, kinds, strict=True):  # the one-task path
        start = repository.begin_attempt(task_id, agent=AGENT, pid=3, payload={}, queue="prove.z3")
        if start.task_final:
            repository.skip_attempt(task_id, start.number)
            continue
        repository.commit_result(
            task_id, attempt_number=start.number, agent=AGENT, theorem_id="t",
            outcome=OUTCOMES[kind],
        )  # fmt: skip
    starts = begin_attempts(
        [Member(t, {"statement": "1 = 1"}, "t") for t in many], agent=AGENT, pid=3,
        queue="prove.z3",
    )  # fmt: skip
    assert [s.task_final for s in starts] == [True, False, False, False, False]
    assert [s.family for s in starts] == ["f"] * 5
    won = commit_results(
        [
            Finished(t, s.number, "t", OUTCOMES[k])
            for t, s, k in zip(many, starts, kinds, strict=True)
            if not s.task_final
        ],
        agent=AGENT,
    )
    assert won == [True, True, True, True]
    assert [_state(t) for t in many] == [_state(t) for t in one]
    # …and what that is: the lost attempt abandoned, every verdict stored once.
    lost = _state(many[1])
    assert lost["attempts"] == [(1, "lost@x", "ABANDONED", None), (2, AGENT, "REFUTED", None)]
    assert _state(many[0])["attempts"][-1][2:] == ("DUPLICATE", "task already final: not run again")
    assert _state(many[3])["audit"] == [("proof.solvers_disagree", None)]


def test_a_second_commit_of_the_batch_changes_nothing_but_its_attempts(store_url: str) -> None:
    tasks = [_submit() for _ in range(3)]
    members = [Member(t, {}, None) for t in tasks]
    first = begin_attempts(members, agent=AGENT, pid=1, queue="prove.z3")
    again = begin_attempts(members, agent="zombie@x", pid=2, queue="prove.z3")
    assert [s.number for s in first] == [1, 1, 1] and [s.number for s in again] == [2, 2, 2]
    assert (
        commit_results(
            [
                Finished(t, s.number, None, OUTCOMES["proved"])
                for t, s in zip(tasks, first, strict=True)
            ],
            agent=AGENT,
        )
        == [True] * 3
    )
    late = [
        Finished(t, s.number, None, OUTCOMES["refuted"]) for t, s in zip(tasks, again, strict=True)
    ]
    assert commit_results(late, agent="zombie@x") == [False] * 3
    for task_id in tasks:
        state = _state(task_id)
        assert state["verdict"] == "PROVED" and state["results"] == 1
        assert [a[2] for a in state["attempts"]] == ["PROVED", "DUPLICATE"]
        assert state["audit"] == [("result.duplicate", 2)]
        assert state["open"] == []


def test_a_member_without_a_task_row_gets_one(store_url: str) -> None:
    known, unknown = _submit(), str(uuid.uuid4())
    starts = begin_attempts(
        [Member(known, {}, None), Member(unknown, {"statement": "2 = 2"}, "u")],
        agent=AGENT, pid=1, queue="prove.cvc5",
    )  # fmt: skip
    assert [s.number for s in starts] == [1, 1]
    status = repository.task_status(unknown)
    assert status is not None
    assert (status["state"], status["queue"], status["theorem_id"]) == (
        "RUNNING",
        "prove.cvc5",
        "u",
    )
    assert status["payload"] == {"statement": "2 = 2"}


def test_an_empty_batch_writes_nothing(store_url: str) -> None:
    assert begin_attempts([], agent=AGENT, pid=1, queue="prove.z3") == []
    assert commit_results([], agent=AGENT) == []
