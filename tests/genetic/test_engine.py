"""The GA run logic without Celery: content-derived evaluation ids, scoring from stored
results (a missing one is a failure), seeded populations, in-process evaluation."""

from __future__ import annotations

from hms_celery.agents.builtin.ga import GASkill
from hms_celery.genetic import engine, families
from hms_celery.genetic.genome import Z3_DEFAULT_GENOME, genome_key
from hms_celery.verification.strategy import NAMED_STRATEGIES

TRAINING = [families.instance(name, n) for name, n in families.QUICK_TRAINING]
LINEAR = NAMED_STRATEGIES["linearise-smt"].to_json()


def _run(**extra: object) -> dict:
    return {
        "id": "run-1",
        "training": TRAINING,
        "population_size": 6,
        "seed": 5,
        "rlimit": 100_000,
        "timeout": 2.0,
        "config": {"baselines": {"z3-default": Z3_DEFAULT_GENOME}},
        **extra,
    }


def test_evaluations_have_content_ids_and_repeat_genomes_are_evaluated_once() -> None:
    run = _run()
    tasks = engine.plan(run, [LINEAR, {**LINEAR, "name": "same genome"}, Z3_DEFAULT_GENOME])
    assert len(tasks) == 2 * len(TRAINING)  # the renamed copy adds nothing
    assert [t.task_id for t in tasks] == [
        t.task_id for t in engine.plan(run, [LINEAR, Z3_DEFAULT_GENOME])
    ]
    assert (
        len(
            {t.task_id for t in engine.plan(_run(id="run-2"), [LINEAR])}
            & {t.task_id for t in tasks}
        )
        == 0
    )
    payload = tasks[0].payload
    assert (
        payload["strategy"] == LINEAR and payload["rlimit"] == 100_000 and payload["timeout"] == 2.0
    )
    assert payload["theorem_id"] == TRAINING[0]["id"]


def test_missing_or_failed_results_score_as_failures() -> None:
    run = _run()
    ids = {t.instance_id: t.task_id for t in engine.plan(run, [LINEAR])}
    first = TRAINING[0]["id"]
    results = {
        ids[first]: {
            "status": "DONE",
            "verdict": TRAINING[0]["expected"],
            "rlimit": 10,
            "seconds": 0.1,
        }
    }
    fitness = engine.fitness_of(run, LINEAR, results)
    assert fitness.solved == 1
    assert fitness.par2 == 10 + 2 * 2 * 100_000  # two instances without a result: 2 × budget each


def test_initial_population_is_seeded_and_reproducible() -> None:
    run = _run()
    first = engine.initial_population(run)
    assert genome_key(first[0]) == genome_key(Z3_DEFAULT_GENOME)
    assert [genome_key(g) for g in first] == [genome_key(g) for g in engine.initial_population(run)]
    assert [genome_key(g) for g in first] != [
        genome_key(g) for g in engine.initial_population(_run(seed=6))
    ]
    assert len(first) == 6


def test_inline_evaluation_and_the_ga_skill_task() -> None:
    linear, evaluations = engine.evaluate_inline(LINEAR, TRAINING, rlimit=100_000, timeout_s=2)
    plain, _ = engine.evaluate_inline(Z3_DEFAULT_GENOME, TRAINING, rlimit=100_000, timeout_s=2)
    assert linear.solved == len(TRAINING) > plain.solved
    assert [e.verdict for e in evaluations] == [i["expected"] for i in TRAINING]
    assert engine.is_better(linear.to_json(), plain.to_json())
    assert not engine.is_better(plain.to_json(), linear.to_json())

    done = GASkill().execute(
        {"strategy": "linearise-smt", "instances": TRAINING, "rlimit": 100_000}
    )
    assert done["fitness"]["solved"] == len(TRAINING)
    assert "error" in GASkill().execute({"strategy": "no-such-strategy", "family": "war-abs"})
    assert (
        "unknown theorem family"
        in GASkill().execute({"strategy": "smt", "family": "nope"})["error"]
    )
