"""GA runs as Celery work: one generation task and one scoring task per generation (queue ``ga``).

``hms.ga.generation(run_id, generation)`` stores the generation's population (generation 0:
seeded from the run) and fans its fitness evaluations out as ``hms.prove`` tasks on the
prover queue, in a chord whose body is ``hms.ga.score(run_id, generation)``.  The scorer reads
the verdicts from the store, scores every genome (solved count, then PAR-2 in rlimit units),
selects and varies the next population, records the generation and enqueues the next one —
or, after the last generation, ends the run and decides the promotion of its winner.

Every step is recorded in the store before it is published (so the supervisor requeues it
if its agent dies) and is idempotent: the population is stored once, the evaluations have
content-derived ids, and scoring is a conditional update that succeeds once per generation.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import chord

from hms_celery.agents.skills import PROOF_QUEUES
from hms_celery.app import app
from hms_celery.genetic import engine, promotion
from hms_celery.runtime import publish
from hms_celery.runtime.recorded import RecordedTask
from hms_celery.store import ga as ga_store
from hms_celery.store import repository
from hms_celery.store.models import GARunStatus, PromotionState, TaskStatus
from hms_celery.store.records import GARunRecord

log = logging.getLogger(__name__)

GENERATION_TASK = "hms.ga.generation"
SCORE_TASK = "hms.ga.score"
GA_QUEUE = "ga"
ACTOR = "ga"


# ----------------------------------------------------------------------------- publishing
def publish_generation(run_id: str, generation: int, *, task_id: str | None = None) -> str:
    """Record and enqueue the generation task of ``generation`` (default id: derived from the
    run, so publishing it twice records it once)."""
    return _publish_step(
        GENERATION_TASK,
        ga_store.GENERATION_KIND,
        run_id,
        generation,
        task_id or _gen_id(run_id, generation),
    )


def publish_score(run_id: str, generation: int, *, task_id: str | None = None) -> str:
    """Record and enqueue the scoring task of ``generation`` outside a chord."""
    return _publish_step(
        SCORE_TASK,
        ga_store.SCORE_KIND,
        run_id,
        generation,
        task_id or _score_id(run_id, generation),
    )


def _gen_id(run_id: str, generation: int) -> str:
    return engine.step_id(run_id, f"gen/{generation}")


def _score_id(run_id: str, generation: int) -> str:
    return engine.step_id(run_id, f"score/{generation}")


def _record_step(kind: str, run_id: str, generation: int, task_id: str) -> dict[str, Any]:
    payload = {"run_id": run_id, "generation": generation}
    ga_store.record_tasks(
        [
            {
                "id": task_id,
                "kind": kind,
                "queue": GA_QUEUE,
                "payload": payload,
                "theorem_id": None,
                "family": ga_store.run_label(run_id),
            }
        ]
    )
    return payload


def _publish_step(name: str, kind: str, run_id: str, generation: int, task_id: str) -> str:
    payload = _record_step(kind, run_id, generation, task_id)
    if ga_store.evaluation_results([task_id])[task_id]["status"] in TaskStatus.FINAL:
        return task_id  # this step already ran
    publish.publish(publish.Publication(name, task_id, GA_QUEUE, payload, limits=False))
    return task_id


# ----------------------------------------------------------------------------- bookkeeping
class StepTask(RecordedTask):
    """A GA step's base: its attempts are recorded; a crashed step fails its run."""

    attempt_queue = GA_QUEUE

    def attempt_failed(self, exc: Exception, kwargs: dict[str, Any]) -> None:
        run_id = kwargs.get("run_id")
        if isinstance(run_id, str):
            ga_store.fail_run(run_id, f"{type(exc).__name__}: {exc}", actor=self.agent)


# ----------------------------------------------------------------------------- generation
@app.task(name=GENERATION_TASK, bind=True, base=StepTask)
def generation_task(self: StepTask, run_id: str, generation: int) -> dict[str, Any]:
    """Fan out the fitness evaluations of ``generation`` (a chord ending in its scoring)."""
    if self.attempt.task_final:
        return {"run_id": run_id, "generation": generation, "skipped": "already done"}
    result = _fan_out(run_id, generation)
    self.complete()
    return result


def _fan_out(run_id: str, number: int) -> dict[str, Any]:
    run = ga_store.get_run(run_id)
    if run is None or run["status"] != GARunStatus.RUNNING:
        return {"run_id": run_id, "generation": number, "skipped": "run not running"}
    gen = ga_store.get_generation(run_id, number)
    if gen is None:
        if number != 0:
            raise RuntimeError(f"generation {number} of run {run_id} was never created")
        gen = ga_store.ensure_generation(run_id, 0, engine.initial_population(run))
    if gen["status"] == ga_store.SCORED:
        return {"run_id": run_id, "generation": number, "skipped": "already scored"}
    evaluations = engine.plan(run, engine.evaluated_genomes(run, gen))
    queue = PROOF_QUEUES["z3"]
    label = ga_store.run_label(run_id)
    ga_store.record_tasks(
        {
            "id": ev.task_id,
            "kind": ga_store.FITNESS_KIND,
            "queue": queue,
            "payload": ev.payload,
            "theorem_id": ev.instance_id,
            "family": label,
        }
        for ev in evaluations
    )
    states = ga_store.evaluation_results([ev.task_id for ev in evaluations])
    todo = [ev for ev in evaluations if states[ev.task_id]["status"] not in TaskStatus.FINAL]
    score_id = _score_id(run_id, number)
    score_kwargs = _record_step(ga_store.SCORE_KIND, run_id, number, score_id)
    body = publish.signature(
        publish.Publication(SCORE_TASK, score_id, GA_QUEUE, score_kwargs, limits=False),
        immutable=True,
    )
    if todo:
        header = [
            publish.signature(
                publish.Publication(
                    publish.PROVE_TASK, ev.task_id, queue, ev.payload, timeout=run["timeout"]
                )
            )
            for ev in todo
        ]
        chord(header)(body)
    else:  # every genome met before: nothing to prove, score at once
        body.apply_async()
    ga_store.mark_published(run_id, number, len(todo))
    return {"run_id": run_id, "generation": number, "evaluations": len(todo)}


# ----------------------------------------------------------------------------- scoring
@app.task(name=SCORE_TASK, bind=True, base=StepTask)
def score_task(self: StepTask, *results: Any, run_id: str, generation: int) -> dict[str, Any]:
    """Score ``generation`` once, then enqueue the next generation or finish the run.

    ``results`` (the chord header's return values) are ignored: the store is the record.
    """
    if self.attempt.task_final:
        return {"run_id": run_id, "generation": generation, "skipped": "already done"}
    result = _score(run_id, generation, self.agent)
    if result.get("waiting"):
        # Some evaluation is not final yet (a requeued copy is still running): come back.
        repository.release_attempt(
            self.request.id, attempt_number=self.attempt.number, why="evaluations pending"
        )
        raise self.retry(countdown=2, max_retries=None)
    self.complete()
    return result


def _score(run_id: str, number: int, agent: str) -> dict[str, Any]:
    run = ga_store.get_run(run_id)
    if run is None or run["status"] != GARunStatus.RUNNING:
        return {"run_id": run_id, "generation": number, "skipped": "run not running"}
    gen = ga_store.get_generation(run_id, number)
    if gen is None:
        raise RuntimeError(f"generation {number} of run {run_id} was never created")
    if gen["status"] == ga_store.SCORED:
        _continue(run, number)  # a redelivered scorer: make sure the next step exists
        return {"run_id": run_id, "generation": number, "skipped": "already scored"}
    genomes = engine.evaluated_genomes(run, gen)
    ids = [ev.task_id for ev in engine.plan(run, genomes)]
    results = ga_store.evaluation_results(ids)
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
    won = ga_store.record_scores(
        run_id,
        number,
        figures=engine.figures(population, fitnesses),
        next_population=nxt,
        run_updates=updates,
        actor=agent,
    )
    if won:
        ga_store.supersede_steps(run_id, ga_store.SCORE_KIND)
    _continue(ga_store.get_run(run_id) or run, number)
    return {
        "run_id": run_id,
        "generation": number,
        "scored": won,
        "best": best_fitness.to_json(),
    }


def _continue(run: GARunRecord, number: int) -> None:
    """After generation ``number`` is scored: enqueue the next one, or settle the run."""
    if run["status"] == GARunStatus.RUNNING:
        if run["current_generation"] == number + 1:
            publish_generation(run["id"], number + 1)
    elif run["status"] == GARunStatus.DONE and run["promotion"] == PromotionState.NONE:
        promotion.settle(run, actor=ACTOR)
