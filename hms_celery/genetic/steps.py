"""The GA's two steps — fan out a generation, score it — over a store and a publisher.

The steps are written against two small ports, so that their decisions (what to record,
what to publish, when to wait, when to end a run) have unit tests with an in-memory store
and a recording publisher, beside the real-service tests
(``tests/genetic/test_ga_stack.py``).  :data:`CELERY` is the real pair: the SQL store
(:mod:`hms_celery.store.ga`) and Celery (:mod:`hms_celery.runtime.publish`, a chord).

Every step is recorded before it is published (so the supervisor requeues it if its agent
dies) and is idempotent: the population is stored once, the evaluations have
content-derived ids, and scoring is a conditional update that succeeds once per generation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hms_celery.genetic import engine
from hms_celery.runtime import publish
from hms_celery.runtime.publish import Publication
from hms_celery.runtime.skills import PROOF_QUEUES
from hms_celery.store.ga import FITNESS_KIND, GENERATION_KIND, SCORE_KIND, run_label
from hms_celery.store.models import GARunStatus, GenerationStatus, PromotionState, TaskStatus
from hms_celery.store.records import GARunRecord, GenerationRecord

GENERATION_TASK = "hms.ga.generation"
SCORE_TASK = "hms.ga.score"
GA_QUEUE = "ga"
ACTOR = "ga"


class GAStore(Protocol):
    """What the steps read and write (:mod:`hms_celery.store.ga` is the real one)."""

    def get_run(self, run_id: str) -> GARunRecord | None: ...
    def get_generation(self, run_id: str, number: int) -> GenerationRecord | None: ...
    def ensure_generation(
        self, run_id: str, number: int, population: list[dict[str, Any]]
    ) -> GenerationRecord: ...
    def record_tasks(self, rows: Iterable[dict[str, Any]]) -> None: ...
    def evaluation_results(self, task_ids: Sequence[str]) -> dict[str, dict[str, Any]]: ...
    def mark_published(self, run_id: str, number: int, evaluations: int) -> None: ...
    def record_scores(
        self,
        run_id: str,
        number: int,
        *,
        figures: dict[str, Any],
        next_population: list[dict[str, Any]] | None,
        run_updates: dict[str, Any],
        actor: str,
    ) -> bool: ...
    def supersede_steps(self, run_id: str, kind: str) -> None: ...


class GAPublisher(Protocol):
    """How the steps hand work on (Celery is the real one)."""

    def publish(self, pub: Publication) -> None:
        """Enqueue one task."""

    def fan_out(self, header: list[Publication], body: Publication) -> None:
        """Enqueue ``header`` so that ``body`` runs once all of them have finished."""

    def settle(self, run: GARunRecord) -> None:
        """Decide the promotion of a finished run's winner."""


class CeleryPublisher:
    """The real publisher: Celery tasks, a chord for a generation's evaluations."""

    def publish(self, pub: Publication) -> None:
        publish.publish(pub)

    def fan_out(self, header: list[Publication], body: Publication) -> None:
        from celery import chord

        chord([publish.signature(p) for p in header])(publish.signature(body, immutable=True))

    def settle(self, run: GARunRecord) -> None:
        from hms_celery.genetic import promotion

        promotion.settle(run, actor=ACTOR)


@dataclass(frozen=True)
class Ports:
    """The store and publisher the steps use."""

    store: GAStore
    publisher: GAPublisher


def celery_ports() -> Ports:
    """The real ports: the SQL store and Celery."""
    from hms_celery.store import ga

    return Ports(ga, CeleryPublisher())


def generation_id(run_id: str, generation: int) -> str:
    """The task id of ``generation``'s fan-out step (derived: published twice, recorded once)."""
    return engine.step_id(run_id, f"gen/{generation}")


def score_id(run_id: str, generation: int) -> str:
    """The task id of ``generation``'s scoring step."""
    return engine.step_id(run_id, f"score/{generation}")


# ----------------------------------------------------------------------------- publishing
def publish_step(
    ports: Ports, name: str, kind: str, run_id: str, generation: int, task_id: str
) -> str:
    """Record a step task and publish it unless it already ran; returns its id."""
    payload = record_step(ports, kind, run_id, generation, task_id)
    if ports.store.evaluation_results([task_id])[task_id]["status"] in TaskStatus.FINAL:
        return task_id  # this step already ran
    ports.publisher.publish(Publication(name, task_id, GA_QUEUE, payload, limits=False))
    return task_id


def record_step(
    ports: Ports, kind: str, run_id: str, generation: int, task_id: str
) -> dict[str, Any]:
    """Record a step task (unless recorded); returns its keyword arguments."""
    payload = {"run_id": run_id, "generation": generation}
    ports.store.record_tasks(
        [
            {
                "id": task_id,
                "kind": kind,
                "queue": GA_QUEUE,
                "payload": payload,
                "theorem_id": None,
                "family": run_label(run_id),
            }
        ]
    )
    return payload


def publish_generation(ports: Ports, run_id: str, generation: int) -> str:
    """Record and enqueue the fan-out step of ``generation``."""
    return publish_step(
        ports,
        GENERATION_TASK,
        GENERATION_KIND,
        run_id,
        generation,
        generation_id(run_id, generation),
    )


# ----------------------------------------------------------------------------- the steps
def fan_out(ports: Ports, run_id: str, number: int) -> dict[str, Any]:
    """Store generation ``number``'s population (generation 0: seeded from the run) and
    publish its fitness evaluations, with its scoring step waiting for them all."""
    store = ports.store
    run = store.get_run(run_id)
    if run is None or run["status"] != GARunStatus.RUNNING:
        return {"run_id": run_id, "generation": number, "skipped": "run not running"}
    gen = store.get_generation(run_id, number)
    if gen is None:
        if number != 0:
            raise RuntimeError(f"generation {number} of run {run_id} was never created")
        gen = store.ensure_generation(run_id, 0, engine.initial_population(run))
    if gen["status"] == GenerationStatus.SCORED:
        return {"run_id": run_id, "generation": number, "skipped": "already scored"}
    evaluations = engine.plan(run, engine.evaluated_genomes(run, gen))
    queue = PROOF_QUEUES["z3"]  # fitness evaluations score Z3 strategies
    store.record_tasks(
        {
            "id": ev.task_id,
            "kind": FITNESS_KIND,
            "queue": queue,
            "payload": ev.payload,
            "theorem_id": ev.instance_id,
            "family": run_label(run_id),
        }
        for ev in evaluations
    )
    states = store.evaluation_results([ev.task_id for ev in evaluations])
    todo = [ev for ev in evaluations if states[ev.task_id]["status"] not in TaskStatus.FINAL]
    sid = score_id(run_id, number)
    body = Publication(
        SCORE_TASK, sid, GA_QUEUE, record_step(ports, SCORE_KIND, run_id, number, sid), limits=False
    )
    if todo:
        header = [
            Publication(publish.PROVE_TASK, ev.task_id, queue, ev.payload, timeout=run["timeout"])
            for ev in todo
        ]
        ports.publisher.fan_out(header, body)
    else:  # every genome met before: nothing to prove, score at once
        ports.publisher.publish(body)
    store.mark_published(run_id, number, len(todo))
    return {"run_id": run_id, "generation": number, "evaluations": len(todo)}


def score(ports: Ports, run_id: str, number: int, agent: str) -> dict[str, Any]:
    """Score generation ``number`` once, then publish the next generation or end the run.
    ``{"waiting": n}``: n evaluations are not final yet (the caller comes back later)."""
    store = ports.store
    run = store.get_run(run_id)
    if run is None or run["status"] != GARunStatus.RUNNING:
        return {"run_id": run_id, "generation": number, "skipped": "run not running"}
    gen = store.get_generation(run_id, number)
    if gen is None:
        raise RuntimeError(f"generation {number} of run {run_id} was never created")
    if gen["status"] == GenerationStatus.SCORED:
        advance(ports, run, number)  # a redelivered scorer: make sure the next step exists
        return {"run_id": run_id, "generation": number, "skipped": "already scored"}
    genomes = engine.evaluated_genomes(run, gen)
    ids = [ev.task_id for ev in engine.plan(run, genomes)]
    results = store.evaluation_results(ids)
    pending = [i for i in ids if results.get(i, {}).get("status") not in TaskStatus.FINAL]
    if pending:
        return {"run_id": run_id, "generation": number, "waiting": len(pending)}

    population = gen["population"]
    fitnesses = [engine.fitness_of(run, g, results) for g in population]
    best, best_fitness = engine.best_of(population, fitnesses)
    updates: dict[str, Any] = {}
    previous = run["best_fitness"]
    if previous is None or engine.is_better(best_fitness.to_json(), previous):
        updates.update(best_genome=best, best_fitness=best_fitness.to_json())
    if number == 0:
        updates["baselines"] = {
            name: {"strategy": genome, "fitness": engine.fitness_of(run, genome, results).to_json()}
            for name, genome in (run["config"].get("baselines") or {}).items()
        }
    last = number + 1 >= run["generations"]
    nxt = None if last else engine.next_population(run, number, population, fitnesses)
    won = store.record_scores(
        run_id,
        number,
        figures=engine.figures(population, fitnesses),
        next_population=nxt,
        run_updates=updates,
        actor=agent,
    )
    if won:
        store.supersede_steps(run_id, SCORE_KIND)
    advance(ports, store.get_run(run_id) or run, number)
    return {"run_id": run_id, "generation": number, "scored": won, "best": best_fitness.to_json()}


def advance(ports: Ports, run: GARunRecord, number: int) -> None:
    """After generation ``number`` is scored: publish the next one, or settle the run."""
    if run["status"] == GARunStatus.RUNNING:
        if run["current_generation"] == number + 1:
            publish_generation(ports, run["id"], number + 1)
    elif run["status"] == GARunStatus.DONE and run["promotion"] == PromotionState.NONE:
        ports.publisher.settle(run)
