"""The race's rules without Celery: which legs run (plan), what each arrival decides (pure),
and the store transactions that apply the decisions (on SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest

from hms_celery.agents.race import store
from hms_celery.agents.race.decide import Action, Arrival, Kind, decide, kind_of
from hms_celery.agents.race.plan import Leg, leg_celery_id, plan_legs
from hms_celery.store import repository
from hms_celery.verification.strategy import DEFAULT_STRATEGY, NAMED_STRATEGIES
from hms_celery.verification.verdict import ProofOutcome, Verdict

QUEUES = {"z3": "prove.z3", "cvc5": "prove.cvc5"}

PROVED = ProofOutcome(
    Verdict.PROVED,
    reason="hypotheses ∧ ¬goal is unsatisfiable",
    confirmed_by={"solver": "cvc5", "status": "confirmed"},
)
REFUTED = ProofOutcome(Verdict.REFUTED, reason="counterexample", counterexample={"x": "1/2"})
DISAGREE = ProofOutcome(
    Verdict.ERROR,
    reason="solvers disagree: z3 found hypotheses ∧ ¬goal unsatisfiable, cvc5 found it sat",
    stats={"disagreement": {"sat": {"solver": "cvc5"}}},
)
TIMEOUT = ProofOutcome(Verdict.TIMEOUT, reason="Z3 timed out")
UNKNOWN = ProofOutcome(Verdict.UNKNOWN, reason="counterexample is irrational")
UNSUPPORTED = ProofOutcome(Verdict.UNSUPPORTED, reason="cvc5: no ∃ here")
INPUT_ERROR = ProofOutcome(Verdict.ERROR, reason="1:3: unexpected token")


def bounded(n: int) -> ProofOutcome:
    return ProofOutcome(Verdict.BOUNDED, reason=f"checked n ≤ {n}", bound=n)


def arrive(leg: int, outcome: ProofOutcome | None) -> Arrival:
    return Arrival(leg, ["z3/default", "z3/nlsat", "cvc5"][leg], f"agent-{leg}", outcome)


# ----------------------------------------------------------------------------- the plan
def labels(legs: list[Leg]) -> list[str]:
    return [leg.label for leg in legs]


def test_a_statement_races_two_z3_strategies_and_cvc5() -> None:
    legs, skipped = plan_legs(strategy=None, smtlib=False, proof_queues=QUEUES)
    assert labels(legs) == ["z3/default", "z3/nlsat", "cvc5"]
    assert [(leg.index, leg.queue) for leg in legs] == [
        (0, "prove.z3"),
        (1, "prove.z3"),
        (2, "prove.cvc5"),
    ]
    assert [leg.strategy for leg in legs] == [None, "nlsat", None] and skipped == []
    # the request's own strategy replaces the default leg's, and is not run twice
    mine, _ = plan_legs(strategy="nlsat", smtlib=False, proof_queues=QUEUES)
    assert labels(mine) == ["z3/nlsat", "cvc5"]
    assert mine[1].strategy == "nlsat"  # cvc5 takes its preprocessing


def test_smtlib_leaves_out_solvers_that_do_not_read_it() -> None:
    legs, skipped = plan_legs(strategy=None, smtlib=True, proof_queues=QUEUES)
    assert labels(legs) == ["z3/default", "z3/nlsat"]
    assert skipped == [{"label": "cvc5", "why": "cvc5 does not read SMT-LIB problems"}]
    both, _ = plan_legs(
        strategy=None, smtlib=True, proof_queues=QUEUES, smtlib_backends=("z3", "cvc5")
    )
    assert labels(both) == ["z3/default", "z3/nlsat", "cvc5"]


def test_the_family_strategy_races_unless_it_repeats_a_leg() -> None:
    promoted = NAMED_STRATEGIES["portfolio"].to_json()
    legs, _ = plan_legs(
        strategy=None, smtlib=False, proof_queues=QUEUES, promoted=promoted, family="war"
    )
    assert labels(legs) == ["z3/default", "z3/nlsat", "cvc5", "z3/promoted:war"]
    assert legs[3].strategy == promoted and legs[3].index == 3
    same = {**DEFAULT_STRATEGY.to_json(), "name": "ga-winner"}  # the default under a new name
    legs, _ = plan_legs(
        strategy=None, smtlib=False, proof_queues=QUEUES, promoted=same, family="war"
    )
    assert labels(legs) == ["z3/default", "z3/nlsat", "cvc5"]


def test_a_leg_no_live_agent_would_take_is_left_out() -> None:
    legs, skipped = plan_legs(
        strategy=None, smtlib=False, proof_queues=QUEUES, live_queues={"prove.z3", "health"}
    )
    assert labels(legs) == ["z3/default", "z3/nlsat"]
    assert skipped == [{"label": "cvc5", "why": "no live agent consumes prove.cvc5"}]
    # no live agent at all: every leg waits for one, like any task
    legs, skipped = plan_legs(strategy=None, smtlib=False, proof_queues=QUEUES, live_queues=())
    assert len(legs) == 3 and skipped == []


def test_leg_ids_are_stable_per_task() -> None:
    assert leg_celery_id("abc", 2) == "abc.leg2" != leg_celery_id("abd", 2)


# ----------------------------------------------------------------------------- decisions
def test_the_first_decisive_leg_wins_and_cancels_the_others() -> None:
    log = decide(3, [arrive(1, TIMEOUT), arrive(2, PROVED), arrive(0, None)])
    assert [s.action for s in log.steps] == [Action.WAIT, Action.COMMIT, Action.LATE]
    assert log.steps[1].cancel and log.steps[1].leg == 2 and log.cancelled_after == 1
    assert log.result is not None and log.result.verdict is Verdict.PROVED
    assert log.result.stats["race"] == {"leg": 2, "label": "cvc5", "decided": "first decisive leg"}
    assert log.audits == []
    refuted = decide(3, [arrive(0, REFUTED)])
    assert refuted.result is not None and refuted.result.counterexample == {"x": "1/2"}
    assert refuted.steps[0].cancel


def test_without_a_decisive_leg_the_race_ends_when_every_leg_has_finished() -> None:
    open_race = decide(3, [arrive(0, TIMEOUT), arrive(1, UNKNOWN)])
    assert open_race.result is None  # leg 2 is still running
    log = decide(3, [arrive(0, TIMEOUT), arrive(1, UNKNOWN), arrive(2, UNSUPPORTED)])
    assert [s.action for s in log.steps] == [Action.WAIT, Action.WAIT, Action.COMMIT]
    assert not log.steps[-1].cancel
    assert log.result is not None and log.result.verdict is Verdict.UNKNOWN
    assert log.result.stats["race"]["leg"] == 1
    assert log.steps[-1].leg == 1  # committed as leg 1's attempt


@pytest.mark.parametrize(
    ("outcomes", "winner"),
    [
        ([TIMEOUT, bounded(5), UNKNOWN], 1),  # BOUNDED > UNKNOWN > TIMEOUT
        ([bounded(3), bounded(8), bounded(8)], 1),  # the highest bound, the first of equals
        ([INPUT_ERROR, UNSUPPORTED, TIMEOUT], 2),  # TIMEOUT > UNSUPPORTED > ERROR
        ([INPUT_ERROR, INPUT_ERROR, INPUT_ERROR], 0),  # bad input: ERROR it is
    ],
)
def test_the_most_informative_outcome_is_committed(outcomes: list, winner: int) -> None:
    log = decide(3, [arrive(i, o) for i, o in enumerate(outcomes)])
    assert log.steps[-1].leg == winner
    assert log.result is not None and log.result.verdict is outcomes[winner].verdict


def test_a_cancelled_leg_counts_as_finished() -> None:
    log = decide(2, [arrive(0, TIMEOUT), arrive(1, None)])
    assert log.result is not None and log.result.verdict is Verdict.TIMEOUT


@pytest.mark.parametrize(
    ("first", "late"),
    [(PROVED, REFUTED), (REFUTED, PROVED), (PROVED, DISAGREE)],
    ids=["proved-then-refuted", "refuted-then-proved", "proved-then-disagreement"],
)
def test_a_late_contradiction_retracts_the_verdict_to_solvers_disagree(first, late) -> None:
    log = decide(3, [arrive(0, first), arrive(2, late)])
    assert [s.action for s in log.steps] == [Action.COMMIT, Action.RETRACT]
    result = log.result
    assert result is not None and result.verdict is Verdict.ERROR
    assert result.reason.startswith("solvers disagree: leg 0 (z3/default) ")
    assert "leg 2 (cvc5)" in result.reason  # both legs named
    assert first.verdict.value in result.reason
    disagreement = result.stats["disagreement"]
    assert disagreement["retracted"] == first.verdict.value
    assert [x["leg"] for x in disagreement["legs"]] == [0, 2]
    (event,) = log.audits
    assert event["retracted"] == first.verdict.value and event["late"] is True
    assert event["leg"]["agent"] == "agent-2"


def test_a_refutation_names_the_counterexample_in_the_disagreement() -> None:
    log = decide(3, [arrive(1, PROVED), arrive(2, REFUTED)])
    assert log.result is not None
    assert "leg 1 (z3/nlsat) PROVED it (confirmed by cvc5)" in log.result.reason
    assert "leg 2 (cvc5) REFUTED it with x = 1/2" in log.result.reason


def test_agreeing_or_undecided_late_legs_change_nothing() -> None:
    log = decide(3, [arrive(0, PROVED), arrive(1, PROVED), arrive(2, TIMEOUT)])
    assert [s.action for s in log.steps] == [Action.COMMIT, Action.LATE, Action.LATE]
    assert log.result is not None and log.result.verdict is Verdict.PROVED and log.audits == []
    # a refutation is not contradicted by a leg whose own solvers disagree (a sat was found)…
    log = decide(3, [arrive(0, REFUTED), arrive(2, DISAGREE)])
    assert log.result is not None and log.result.verdict is Verdict.REFUTED
    # …but that disagreement is a solver bug: audited all the same
    (event,) = log.audits
    assert event["retracted"] is None and event["reason"] == DISAGREE.reason


def test_a_disagreement_arriving_first_decides_the_race() -> None:
    assert kind_of(DISAGREE) is Kind.DISAGREE and kind_of(INPUT_ERROR) is Kind.OTHER
    log = decide(3, [arrive(1, DISAGREE), arrive(0, PROVED)])
    assert log.steps[0].action is Action.COMMIT and log.steps[0].cancel
    assert log.result is not None and log.result.verdict is Verdict.ERROR
    assert log.result.reason == DISAGREE.reason  # never PROVED after a disagreement
    assert len(log.audits) == 1


# ----------------------------------------------------------------------------- the store
@pytest.fixture(params=["sqlite", "postgresql"])
def race_store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from hms_celery.settings import reset_settings
    from hms_celery.store.migrate import upgrade

    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    upgrade(url)
    monkeypatch.setenv("HMS_DATABASE_URL", url)
    reset_settings()
    yield url
    reset_settings()


def _raced_task(n: int = 3) -> tuple[str, list[Leg]]:
    task_id = str(uuid.uuid4())
    legs, _ = plan_legs(strategy=None, smtlib=False, proof_queues=QUEUES)
    legs = [
        Leg(i, x.backend, x.strategy, x.label, x.queue, leg_celery_id(task_id, i))
        for i, x in enumerate(legs[:n])
    ]
    payload = {
        "theorem_id": "race-t",
        "statement": "∀ x : ℝ, x * x ≥ 0",
        "backend": "race",
        "race": {"legs": [leg.to_json() for leg in legs], "skipped": []},
    }
    repository.record_submission(
        task_id, queue="race", payload=payload, theorem_id="race-t", family="race", actor="test"
    )
    return task_id, legs


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=None)


def test_a_decisive_leg_commits_once_and_the_rest_is_cancelled(race_store: str) -> None:
    task_id, legs = _raced_task()
    a0 = store.start_leg(task_id, legs[0], agent="z3@h", pid=10).number
    a1 = store.start_leg(task_id, legs[1], agent="z3@h", pid=11).number
    assert (a0, a1) == (1, 2)  # leg 2 (cvc5) is still queued
    slow = store.finish_leg(task_id, a1, legs[1], agent="z3@h", outcome=TIMEOUT)
    assert slow.step.action is Action.WAIT and not slow.committed
    assert repository.task_status(task_id)["state"] == "RUNNING"
    a1b = store.start_leg(task_id, legs[1], agent="z3@h", pid=12)
    assert a1b.number is None  # a redelivered copy of a finished leg does not run again
    a0b = store.start_leg(task_id, legs[0], agent="z3@h", pid=13).number  # leg 0 again
    win = store.finish_leg(task_id, a0b, legs[0], agent="z3@h", outcome=PROVED)
    assert win.committed and win.step.cancel
    assert win.running == []  # leg 0's first copy was superseded, leg 1 finished
    assert [leg.index for leg in win.not_started] == [2]
    assert repository.count_results(task_id) == 1
    status = repository.task_status(task_id)
    assert status["state"] == "DONE" and status["verdict"] == "PROVED"
    outcomes = {a["number"]: (a["outcome"], a["leg"]["index"]) for a in status["attempts"]}
    assert outcomes == {
        1: ("ABANDONED", 0),
        2: ("TIMEOUT", 1),
        3: ("PROVED", 0),
        4: ("CANCELLED", 2),  # never started: recorded in the commit
    }
    cancelled = status["attempts"][3]
    assert cancelled["agent"] == store.NOT_STARTED
    assert _ts(cancelled["ended_at"]) == _ts(status["timings"]["finished_at"])
    race = status["race"]
    assert race["winner"]["label"] == "z3/default" and race["winner"]["agent"] == "z3@h"
    assert [x["outcome"] for x in race["legs"]] == ["PROVED", "TIMEOUT", "CANCELLED"]
    # the cvc5 leg delivered after the decision is not run, and adds no attempt
    assert store.start_leg(task_id, legs[2], agent="cvc5@h", pid=20).number is None
    assert len(repository.task_status(task_id)["attempts"]) == 4


def test_running_losers_are_handed_back_and_closed_cancelled(race_store: str) -> None:
    task_id, legs = _raced_task()
    numbers = [
        store.start_leg(task_id, leg, agent=f"w{i}@h", pid=i).number for i, leg in enumerate(legs)
    ]
    win = store.finish_leg(task_id, numbers[2], legs[2], agent="w2@h", outcome=REFUTED)
    assert [(r.number, r.agent, r.celery_id) for r in win.running] == [
        (numbers[0], "w0@h", legs[0].celery_id),
        (numbers[1], "w1@h", legs[1].celery_id),
    ]
    closed = store.mark_cancelled(task_id, {numbers[0]: "terminated"})
    assert closed == [numbers[0]] and store.still_open(task_id, numbers) == [numbers[1]]
    assert store.mark_cancelled(task_id, {numbers[0]: "again"}) == []  # once only
    status = repository.task_status(task_id)
    assert status["verdict"] == "REFUTED" and status["counterexample"] == {"x": "1/2"}
    assert status["agent"] == "w2@h" and status["race"]["winner"]["backend"] == "cvc5"
    # the leg that was finishing records its own (agreeing) verdict, late
    late = store.finish_leg(task_id, numbers[1], legs[1], agent="w1@h", outcome=REFUTED)
    assert late.step.action is Action.LATE and not late.committed
    legs_view = repository.task_status(task_id)["race"]["legs"]
    assert [(x["outcome"], x["late"]) for x in legs_view] == [
        ("CANCELLED", False),
        ("REFUTED", True),
        ("REFUTED", False),
    ]
    assert repository.count_results(task_id) == 1
    assert repository.audit_events(subject=task_id) == []


def test_a_late_contradiction_retracts_the_result_and_is_audited(race_store: str) -> None:
    task_id, legs = _raced_task()
    numbers = [
        store.start_leg(task_id, leg, agent=f"w{i}@h", pid=i).number for i, leg in enumerate(legs)
    ]
    store.finish_leg(task_id, numbers[0], legs[0], agent="w0@h", outcome=PROVED)
    assert repository.task_status(task_id)["verdict"] == "PROVED"
    late = store.finish_leg(task_id, numbers[2], legs[2], agent="w2@h", outcome=REFUTED)
    assert late.step.action is Action.RETRACT
    status = repository.task_status(task_id)
    assert status["verdict"] == "ERROR" and status["state"] == "DONE"
    assert status["reason"].startswith("solvers disagree: leg 0 (z3/default) PROVED it")
    assert "leg 2 (cvc5) REFUTED it with x = 1/2" in status["reason"]
    assert status["counterexample"] is None
    assert status["race"]["retracted"]["verdict"] == "PROVED"
    assert status["race"]["winner"] is None
    assert repository.count_results(task_id) == 1  # the one result, now the ERROR
    (event,) = repository.audit_events(subject=task_id)
    assert event["action"] == "proof.solvers_disagree"
    assert event["details"]["retracted"] == "PROVED"
    assert event["details"]["leg"]["label"] == "cvc5"
    assert event["details"]["reason"] == status["reason"]


def test_a_disagreement_committed_by_a_race_is_audited(race_store: str) -> None:
    task_id, legs = _raced_task()
    number = store.start_leg(task_id, legs[1], agent="w1@h", pid=1).number
    win = store.finish_leg(task_id, number, legs[1], agent="w1@h", outcome=DISAGREE)
    assert win.committed and win.step.cancel
    status = repository.task_status(task_id)
    assert status["verdict"] == "ERROR" and status["reason"] == DISAGREE.reason
    (event,) = repository.audit_events(subject=task_id)
    assert event["action"] == "proof.solvers_disagree"
    assert event["details"]["disagreement"] == {"sat": {"solver": "cvc5"}}


def test_an_undecided_race_commits_the_most_informative_leg(race_store: str) -> None:
    task_id, legs = _raced_task()
    numbers = [
        store.start_leg(task_id, leg, agent=f"w{i}@h", pid=i).number for i, leg in enumerate(legs)
    ]
    store.finish_leg(task_id, numbers[1], legs[1], agent="w1@h", outcome=bounded(4))
    store.finish_leg(task_id, numbers[0], legs[0], agent="w0@h", outcome=TIMEOUT)
    assert repository.task_status(task_id)["state"] == "RUNNING"
    last = store.finish_leg(task_id, numbers[2], legs[2], agent="w2@h", outcome=UNSUPPORTED)
    assert last.committed and not last.step.cancel
    status = repository.task_status(task_id)
    assert (status["verdict"], status["bound"], status["agent"]) == ("BOUNDED", 4, "w1@h")
    assert [a["outcome"] for a in status["attempts"]] == ["TIMEOUT", "BOUNDED", "UNSUPPORTED"]
    assert status["race"]["winner"]["label"] == "z3/nlsat"
    assert repository.count_results(task_id) == 1


def test_a_lost_leg_runs_again_and_is_not_run_after_the_decision(race_store: str) -> None:
    task_id, legs = _raced_task(2)
    lost = store.start_leg(task_id, legs[1], agent="dead@h", pid=1).number
    repository.abandon_attempt(task_id, lost, "agent dead@h failed")  # as the supervisor does
    assert store.leg_of_attempt(task_id, lost)[0] == legs[1]
    assert store.leg_of_attempt(task_id, 99) is None
    again = store.start_leg(task_id, legs[1], agent="alive@h", pid=2).number
    assert again == 2  # a requeued leg runs again
    repository.abandon_attempt(task_id, again, "agent alive@h failed")
    a0 = store.start_leg(task_id, legs[0], agent="w0@h", pid=3).number
    win = store.finish_leg(task_id, a0, legs[0], agent="w0@h", outcome=PROVED)
    assert [leg.index for leg in win.not_started] == [1]  # only LOST copies: not started
    assert store.start_leg(task_id, legs[1], agent="late@h", pid=4).number is None
    outcomes = [a["outcome"] for a in repository.task_status(task_id)["attempts"]]
    assert outcomes == ["LOST", "LOST", "PROVED", "CANCELLED"]
