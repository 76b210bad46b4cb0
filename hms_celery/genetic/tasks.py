"""GA runs as Celery work: one generation task and one scoring task per generation (queue ``ga``).

``hms.ga.generation(run_id, generation)`` stores the generation's population (generation 0:
seeded from the run) and fans its fitness evaluations out as ``hms.prove`` tasks on the
prover queue, in a chord whose body is ``hms.ga.score(run_id, generation)``.  The scorer reads
the verdicts from the store, scores every genome (solved count, then PAR-2 in rlimit units),
selects and varies the next population, records the generation and enqueues the next one —
or, after the last generation, ends the run and decides the promotion of its winner.

The steps themselves are :mod:`hms_celery.genetic.steps` (store and publisher passed in);
this module makes them Celery tasks with their attempts recorded (:class:`StepTask`).
"""

from __future__ import annotations

import logging
from typing import Any

from hms_celery.app import app
from hms_celery.genetic import steps
from hms_celery.genetic.steps import GA_QUEUE, GENERATION_TASK, SCORE_TASK
from hms_celery.runtime import publish
from hms_celery.runtime.recorded import RecordedTask
from hms_celery.store import ga as ga_store
from hms_celery.store import repository

log = logging.getLogger(__name__)

# A step recorded in the store is re-run by its task (the supervisor's requeue).
publish.register_kind(ga_store.GENERATION_KIND, GENERATION_TASK)
publish.register_kind(ga_store.SCORE_KIND, SCORE_TASK)

__all__ = [
    "GA_QUEUE",
    "GENERATION_TASK",
    "SCORE_TASK",
    "StepTask",
    "generation_task",
    "publish_generation",
    "publish_score",
    "score_task",
]


def publish_generation(run_id: str, generation: int, *, task_id: str | None = None) -> str:
    """Record and enqueue the generation task of ``generation`` (default id: derived from the
    run, so publishing it twice records it once)."""
    return steps.publish_step(
        steps.celery_ports(),
        GENERATION_TASK,
        ga_store.GENERATION_KIND,
        run_id,
        generation,
        task_id or steps.generation_id(run_id, generation),
    )


def publish_score(run_id: str, generation: int, *, task_id: str | None = None) -> str:
    """Record and enqueue the scoring task of ``generation`` outside a chord."""
    return steps.publish_step(
        steps.celery_ports(),
        SCORE_TASK,
        ga_store.SCORE_KIND,
        run_id,
        generation,
        task_id or steps.score_id(run_id, generation),
    )


class StepTask(RecordedTask):
    """A GA step's base: its attempts are recorded; a crashed step fails its run."""

    attempt_queue = GA_QUEUE

    def attempt_failed(self, exc: Exception, kwargs: dict[str, Any]) -> None:
        run_id = kwargs.get("run_id")
        if isinstance(run_id, str):
            ga_store.fail_run(run_id, f"{type(exc).__name__}: {exc}", actor=self.agent)


@app.task(name=GENERATION_TASK, bind=True, base=StepTask)
def generation_task(self: StepTask, run_id: str, generation: int) -> dict[str, Any]:
    """Fan out the fitness evaluations of ``generation`` (a chord ending in its scoring)."""
    if self.attempt.task_final:
        return {"run_id": run_id, "generation": generation, "skipped": "already done"}
    result = steps.fan_out(steps.celery_ports(), run_id, generation)
    self.complete()
    return result


@app.task(name=SCORE_TASK, bind=True, base=StepTask)
def score_task(self: StepTask, *results: Any, run_id: str, generation: int) -> dict[str, Any]:
    """Score ``generation`` once, then enqueue the next generation or finish the run.

    ``results`` (the chord header's return values) are ignored: the store is the record.
    """
    if self.attempt.task_final:
        return {"run_id": run_id, "generation": generation, "skipped": "already done"}
    result = steps.score(steps.celery_ports(), run_id, generation, self.agent)
    if result.get("waiting"):
        # Some evaluation is not final yet (a requeued copy is still running): come back.
        repository.release_attempt(
            self.request.id, attempt_number=self.attempt.number, why="evaluations pending"
        )
        raise self.retry(countdown=2, max_retries=None)
    self.complete()
    return result
