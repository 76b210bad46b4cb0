"""GA runs in the store: one active run per family, populations stored once, a generation
scored once, failures counted per family without the GA's own evaluations."""

from __future__ import annotations

import uuid

import pytest

from hms_celery.store import ga, repository
from hms_celery.verification.verdict import ProofOutcome, Verdict

GENOME = {
    "name": "g",
    "preprocess": [],
    "pipeline": [],
    "decider": None,
    "schedule": [],
    "params": {},
}


def _run(family: str, **extra: object) -> str:
    run_id = str(uuid.uuid4())
    ga.create_run(
        {
            "id": run_id,
            "family": family,
            "trigger": "test",
            "training": [{"id": "i1", "request": {"statement": "1 = 1"}, "expected": None}],
            "population_size": 2,
            "generations": 2,
            "seed": 0,
            "rlimit": 1000,
            "timeout": 1.0,
            "config": {},
            **extra,
        },
        actor="test",
    )
    return run_id


def test_one_running_run_per_family(store_url: str) -> None:
    family = f"fam-{uuid.uuid4().hex[:6]}"
    first = _run(family)
    with pytest.raises(ga.ActiveRunError, match=first):
        _run(family)
    assert ga.cancel_run(first, actor="test")
    assert not ga.cancel_run(first, actor="test")  # already ended
    second = _run(family)  # the family is free again
    assert ga.active_run(family)["id"] == second
    assert [r["id"] for r in ga.list_runs(family)] == [second, first]


def test_population_stored_once_and_generation_scored_once(store_url: str) -> None:
    run_id = _run(f"fam-{uuid.uuid4().hex[:6]}")
    stored = ga.ensure_generation(run_id, 0, [GENOME])
    again = ga.ensure_generation(run_id, 0, [{**GENOME, "name": "other"}])
    assert again["population"] == stored["population"] == [GENOME]

    figures = {"fitness": [{"solved": 1}], "best": 1.0, "mean": 1.0, "worst": 1.0, "diversity": 1}
    first = ga.record_scores(
        run_id, 0, figures=figures, next_population=[GENOME, GENOME], run_updates={}, actor="t"
    )
    second = ga.record_scores(
        run_id, 0, figures=figures, next_population=[GENOME], run_updates={}, actor="t"
    )
    assert (first, second) == (True, False)
    gens = ga.generations(run_id)
    assert [(g["number"], g["status"]) for g in gens] == [(0, ga.SCORED), (1, ga.EVALUATING)]
    assert len(gens[1]["population"]) == 2
    assert ga.get_run(run_id)["current_generation"] == 1

    done = ga.record_scores(
        run_id, 1, figures=figures, next_population=None, run_updates={}, actor="t"
    )
    assert done and ga.get_run(run_id)["status"] == "DONE"
    scored = [e for e in repository.audit_events(run_id) if e["action"] == "ga.generation.scored"]
    assert [e["details"]["generation"] for e in scored] == [0, 1]


def _proof(family: str, verdict: Verdict, kind: str = "proof") -> str:
    task_id = str(uuid.uuid4())
    repository.record_submission(
        task_id,
        queue="prove.z3",
        payload={"statement": "1 = 1", "theorem_id": f"{family}-x"},
        theorem_id=f"{family}-x",
        family=family,
        actor="test",
        kind=kind,
    )
    attempt = repository.begin_attempt(task_id, agent="a", pid=1, payload={}, queue="prove.z3")
    repository.commit_result(
        task_id,
        attempt_number=attempt.number,
        agent="a",
        theorem_id=f"{family}-x",
        outcome=ProofOutcome(verdict),
    )
    return task_id


def test_failing_families_count_proofs_not_fitness_evaluations(store_url: str) -> None:
    family = f"fam{uuid.uuid4().hex[:6]}"
    since = ga.ago(60)
    for verdict in (Verdict.UNKNOWN, Verdict.TIMEOUT, Verdict.PROVED):
        _proof(family, verdict)
    for _ in range(3):
        _proof(family, Verdict.UNKNOWN, kind=ga.FITNESS_KIND)
    assert ga.failing_families(since, 2).get(family) == 2
    assert family not in ga.failing_families(since, 3)
    assert ga.count_failures(family, since) == 2
    requests = ga.failing_requests(family, since)
    assert [r["id"] for r in requests] == [f"{family}-x"]  # one per theorem


def test_promotion_replaces_the_family_strategy(store_url: str) -> None:
    family = f"fam-{uuid.uuid4().hex[:6]}"
    assert ga.family_strategy(family) is None
    ga.promote(family, {**GENOME, "name": "one"}, run_id=None, fitness=None, actor="t")
    ga.promote(family, {**GENOME, "name": "two"}, run_id=None, fitness=None, actor="t")
    assert ga.family_strategy(family)["name"] == "two"
    promoted = [e for e in repository.audit_events(family) if e["action"] == "strategy.promoted"]
    assert len(promoted) == 2
