"""The GA steps' decisions through the stub control plane (no services): what a fan-out
records and publishes, when scoring waits, that a generation is scored once, and that a
run ends and settles after its last generation."""

from __future__ import annotations

import pytest

from hms_celery.genetic import engine, families, steps
from hms_celery.genetic.genome import Z3_DEFAULT_GENOME
from hms_celery.settings import get_settings
from tests.genetic.stub_plane import InMemoryGAStore, RecordingPublisher

TRAINING = [families.instance(name, n) for name, n in families.QUICK_TRAINING]


@pytest.fixture
def plane() -> tuple[InMemoryGAStore, RecordingPublisher, steps.Ports]:
    store, publisher = InMemoryGAStore(), RecordingPublisher()
    store.add_run(
        {
            "id": "run-1",
            "family": "drp",
            "training": TRAINING,
            "population_size": 4,
            "generations": 2,
            "seed": 7,
            "rlimit": 100_000,
            "timeout": 3.0,
            "config": {"baselines": {"z3-default": Z3_DEFAULT_GENOME}},
        }
    )
    return store, publisher, steps.Ports(store, publisher)


def _evaluation_ids(store: InMemoryGAStore, number: int) -> list[str]:
    run, gen = store.get_run("run-1"), store.get_generation("run-1", number)
    return [ev.task_id for ev in engine.plan(run, engine.evaluated_genomes(run, gen))]


def test_fan_out_records_every_evaluation_then_publishes_them_with_the_scorer(plane) -> None:
    store, publisher, ports = plane
    result = steps.fan_out(ports, "run-1", 0)
    ids = _evaluation_ids(store, 0)
    assert result["evaluations"] == len(ids) > 0
    assert all(store.tasks[i]["kind"] == "fitness" for i in ids)  # recorded before publishing
    [(header, body)] = publisher.chords
    assert [p.task_id for p in header] == ids
    soft, hard = get_settings().time_limits(3.0)
    assert {(p.name, p.queue) for p in header} == {("hms.prove", "prove.z3")}
    assert all(p.options()["soft_time_limit"] == soft for p in header)
    assert all(p.options()["time_limit"] == hard for p in header)
    assert (body.name, body.task_id) == ("hms.ga.score", steps.score_id("run-1", 0))
    assert store.tasks[body.task_id]["kind"] == "ga.score"
    assert store.gens[("run-1", 0)]["evaluations"] == len(ids)


def test_a_redelivered_fan_out_publishes_only_what_is_not_final(plane) -> None:
    store, publisher, ports = plane
    steps.fan_out(ports, "run-1", 0)
    ids = _evaluation_ids(store, 0)
    for task_id in ids[:3]:
        store.finish(task_id, "PROVED")
    recorded = dict(store.tasks)
    steps.fan_out(ports, "run-1", 0)
    assert store.tasks.keys() == recorded.keys()  # content-derived ids: recorded once
    header, _ = publisher.chords[-1]
    assert [p.task_id for p in header] == ids[3:]
    for task_id in ids[3:]:
        store.finish(task_id, "PROVED")
    steps.fan_out(ports, "run-1", 0)
    assert len(publisher.chords) == 2  # nothing left to prove: the scorer goes alone
    assert publisher.published[-1].task_id == steps.score_id("run-1", 0)


def test_scoring_waits_for_every_evaluation(plane) -> None:
    store, _, ports = plane
    steps.fan_out(ports, "run-1", 0)
    ids = _evaluation_ids(store, 0)
    for task_id in ids[:-1]:
        store.finish(task_id, "PROVED")
    assert steps.score(ports, "run-1", 0, "agent@h")["waiting"] == 1
    assert store.scored == []


def test_a_generation_is_scored_once_and_the_next_one_published(plane) -> None:
    store, publisher, ports = plane
    steps.fan_out(ports, "run-1", 0)
    for task_id in _evaluation_ids(store, 0):
        store.finish(task_id, "PROVED")
    first = steps.score(ports, "run-1", 0, "agent@h")
    assert first["scored"] is True
    run = store.get_run("run-1")
    assert run["current_generation"] == 1 and run["best_fitness"] == first["best"]
    assert set(run["baselines"]) == {"z3-default"}
    next_gen = steps.generation_id("run-1", 1)
    assert publisher.published[-1].task_id == next_gen
    assert store.tasks[next_gen]["kind"] == "ga.generation"
    again = steps.score(ports, "run-1", 0, "other@h")  # a redelivered scorer
    assert again["skipped"] == "already scored"
    assert store.scored == [("run-1", 0)]
    assert list(store.tasks).count(next_gen) == 1


def test_the_last_generation_ends_the_run_and_settles_its_winner(plane) -> None:
    store, publisher, ports = plane
    for number in (0, 1):
        steps.fan_out(ports, "run-1", number)
        for task_id in _evaluation_ids(store, number):
            if store.tasks[task_id]["status"] != "DONE":
                store.finish(task_id, "PROVED")
        steps.score(ports, "run-1", number, "agent@h")
    assert store.get_run("run-1")["status"] == "DONE"
    assert publisher.settled == ["run-1"]
    assert ("run-1", 2) not in store.gens


def test_a_stopped_run_publishes_nothing(plane) -> None:
    store, publisher, ports = plane
    store.runs["run-1"]["status"] = "CANCELLED"
    assert steps.fan_out(ports, "run-1", 0)["skipped"] == "run not running"
    assert steps.score(ports, "run-1", 0, "agent@h")["skipped"] == "run not running"
    assert publisher.published == publisher.chords == []
    assert store.tasks == {}
