"""GA runs on real workers: every generation stored and scored once, the same seed giving the
same run, bad input refused before anything is enqueued."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from hms_celery import client
from hms_celery.errors import InputError, StatementError
from hms_celery.genetic import families
from hms_celery.genetic.fitness import Fitness
from hms_celery.genetic.genome import genome_key
from hms_celery.store import ga as ga_store
from hms_celery.store import repository
from hms_celery.store.db import connection_scope
from hms_celery.store.models import ProofResult, Task
from tests.support import WorkerProcess

pytestmark = [pytest.mark.services, pytest.mark.slow]

# Small instances on which Z3's plain solver needs far more rlimit than a linearising one.
TRAINING = [families.instance(name, n) for name, n in families.QUICK_TRAINING]
RUN = {"population": 6, "generations": 3, "seed": 7, "rlimit": 100_000, "timeout": 2.0}


def _family() -> str:
    return f"wa{uuid.uuid4().hex[:8]}"


def _key(fitness: dict) -> tuple:
    return Fitness.from_json(fitness).key()


def test_run_scores_every_generation_once_and_beats_z3_default(ga_worker: WorkerProcess) -> None:
    run_id = client.start_ga_run(_family(), instances=TRAINING, **RUN)
    run = client.wait_for_ga_run(run_id, timeout=300)
    assert run["status"] == "DONE", (run["error"], ga_worker.log())

    gens = run["generation_records"]
    assert [(g["number"], g["status"]) for g in gens] == [
        (0, "SCORED"),
        (1, "SCORED"),
        (2, "SCORED"),
    ]
    for g in gens:
        assert len(g["population"]) == len(g["fitness"]) == RUN["population"]
        assert g["best"] >= g["mean"] >= g["worst"]
        assert 0 < g["diversity"] <= 1
    scored = [e for e in repository.audit_events(run_id) if e["action"] == "ga.generation.scored"]
    assert [e["details"]["generation"] for e in scored] == [0, 1, 2]

    # Every fitness evaluation is a proof task with exactly one committed result.
    label = ga_store.run_label(run_id)
    with connection_scope() as conn:
        tasks = conn.execute(
            select(func.count())
            .select_from(Task)
            .where(Task.family == label, Task.kind == "fitness")
        ).scalar()
        results = conn.execute(
            select(func.count())
            .select_from(ProofResult.__table__.join(Task.__table__))
            .where(Task.family == label)
        ).scalar()
    assert tasks == results > 0

    # The winner solves everything within the budget, which Z3's plain solver does not.
    z3_default = run["baselines"]["z3-default"]["fitness"]
    best = run["best_fitness"]
    assert best["solved"] == len(TRAINING)
    assert _key(best) > _key(z3_default)
    assert best["par2"] <= 0.7 * z3_default["par2"]
    # Elitism: the best never gets worse from one generation to the next.
    assert [g["best"] for g in gens] == sorted(g["best"] for g in gens)


def test_same_seed_gives_the_same_run(ga_worker: WorkerProcess) -> None:
    runs = []
    for _ in range(2):
        run_id = client.start_ga_run(_family(), instances=TRAINING, **RUN)
        runs.append(client.wait_for_ga_run(run_id, timeout=300))
    first, second = runs
    assert first["status"] == second["status"] == "DONE"
    assert genome_key(first["best_genome"]) == genome_key(second["best_genome"])
    for a, b in zip(first["generation_records"], second["generation_records"], strict=True):
        assert [genome_key(g) for g in a["population"]] == [genome_key(g) for g in b["population"]]
        assert [(f["solved"], f["par2"]) for f in a["fitness"]] == [
            (f["solved"], f["par2"]) for f in b["fitness"]
        ]


def test_bad_runs_are_refused_before_anything_is_enqueued(ga_worker: WorkerProcess) -> None:
    with pytest.raises(InputError, match=r"unknown theorem family 'no-such-family'.*war-abs"):
        client.start_ga_run("no-such-family")
    with pytest.raises(InputError, match="population"):
        client.start_ga_run(_family(), instances=TRAINING, population=1)
    bad = [{"id": "bad", "request": {"statement": "1 + = 2"}, "expected": None}]
    with pytest.raises(StatementError):
        client.start_ga_run(_family(), instances=bad)
    with pytest.raises(client.UnknownRunError):
        client.query_ga_run("no-such-run")


def test_one_run_per_family_and_approval(ga_worker: WorkerProcess) -> None:
    family = _family()
    run_id = client.start_ga_run(
        family, instances=TRAINING[:1], population=2, generations=1, auto_promote=False
    )
    with pytest.raises(ga_store.ActiveRunError, match=run_id):
        client.start_ga_run(family, instances=TRAINING[:1])
    run = client.wait_for_ga_run(run_id, timeout=120)
    assert run["status"] == "DONE"
    assert run["promotion"] in ("pending", "not-better")  # never promoted without approval
    assert ga_store.family_strategy(family) is None
    if run["promotion"] == "not-better":  # refused without --force, and says why
        with pytest.raises(InputError, match="not better"):
            client.promote_strategy(run_id)
        assert ga_store.family_strategy(family) is None
    done = client.promote_strategy(run_id, force=run["promotion"] == "not-better")
    assert ga_store.family_strategy(family) == done["strategy"]
    assert client.show_strategy(family)["run_id"] == run_id
    assert client.query_ga_run(run_id)["promotion"] == "promoted"
