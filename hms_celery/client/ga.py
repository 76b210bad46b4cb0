"""GA runs: start one, follow it (its generations' figures), list and cancel runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from hms_celery.client.actor import ACTOR
from hms_celery.errors import InputError
from hms_celery.runtime import publish
from hms_celery.store import ga as ga_store
from hms_celery.store.models import PromotionState
from hms_celery.store.records import GAProgress, GARunRecord, GARunView, GenerationView


class UnknownRunError(InputError):
    """No GA run with this id is in the store."""


def start_ga_run(
    family: str,
    *,
    population: int | None = None,
    generations: int | None = None,
    seed: int = 0,
    rlimit: int | None = None,
    timeout: float | None = None,
    instances: list[dict[str, Any]] | None = None,
    auto_promote: bool | None = None,
) -> str:
    """Start a GA run evolving a Z3 strategy for ``family``; returns the run id.

    The training set is ``instances`` (``[{"id", "request": {statement, assumptions,
    variables} | {smtlib}, "expected"}]``) or, by default, the family's: a generated
    Moneyball family (:mod:`hms_celery.genetic.families`) or the catalogue's claims of that
    family.  Defaults for the other options come from the ``HMS_GA_*`` settings.  A family
    with a running run raises :class:`~hms_celery.store.ga.ActiveRunError`.
    """
    with publish.broker_errors():
        from hms_celery.genetic import runs  # DEAP and numpy: loaded when a run starts

        return runs.start_run(
            family,
            instances=instances,
            population=population,
            generations=generations,
            seed=seed,
            rlimit=rlimit,
            timeout=timeout,
            auto_promote=auto_promote,
            trigger="client",
            actor=ACTOR,
        )


def query_ga_run(run_id: str) -> GARunView:
    """A run: its settings, state, progress, best genome and fitness, baselines and every
    generation's figures (best/mean/worst fitness, diversity, the best genome of each)."""
    run = ga_store.get_run(run_id)
    if run is None:
        raise UnknownRunError(f"unknown GA run {run_id!r}")
    gens = ga_store.generations(run_id)
    # Loaded here, not with the client: DEAP and numpy cost every `hms` command ~0.3 s.
    from hms_celery.genetic.engine import best_of
    from hms_celery.genetic.fitness import Fitness
    from hms_celery.genetic.genome import genome_key

    views: list[GenerationView] = []
    for gen in gens:
        view: GenerationView = {**gen, "distinct": len({genome_key(g) for g in gen["population"]})}
        if gen["fitness"]:
            fitness = [Fitness.from_json(f) for f in gen["fitness"]]
            genome, best = best_of(gen["population"], fitness)
            view["best_genome"], view["best_fitness"] = genome, best.to_json()
        views.append(view)
    progress: GAProgress = {
        "scored": sum(g["status"] == ga_store.SCORED for g in gens),
        "generations": run["generations"],
        "evaluating": next((g["number"] for g in gens if g["status"] != ga_store.SCORED), None),
    }
    return {**run, "generation_records": views, "progress": progress}


#: How long :func:`wait_for_ga_run` waits, after a run is DONE, for its promotion decision.
SETTLE_GRACE_S = 10.0


def wait_for_ga_run(
    run_id: str,
    timeout: float | None = None,
    on_progress: Callable[[GARunView], object] | None = None,
) -> GARunView:
    """Block until the run is DONE, FAILED or CANCELLED; returns :func:`query_ga_run`.  A
    DONE run is returned once its winner's promotion is decided (the last step commits DONE,
    then settles the promotion), or :data:`SETTLE_GRACE_S` after DONE if it is not.

    ``on_progress(run)`` is called whenever another generation has been scored.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = -1
    done_at: float | None = None
    while True:
        run = query_ga_run(run_id)
        if run["progress"]["scored"] != seen:
            seen = run["progress"]["scored"]
            if on_progress is not None:
                on_progress(run)
        if run["status"] != "RUNNING":
            done_at = time.monotonic() if done_at is None else done_at
            settling = run["status"] == "DONE" and run.get("promotion") == PromotionState.NONE
            if not settling or time.monotonic() - done_at >= SETTLE_GRACE_S:
                return run
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(
                f"GA run {run_id} still RUNNING after {timeout}s "
                f"({seen}/{run['generations']} generations scored)"
            )
        time.sleep(0.25)


def list_ga_runs(family: str | None = None, limit: int = 50) -> list[GARunRecord]:
    """GA runs, newest first."""
    return ga_store.list_runs(family, limit)


def cancel_ga_run(run_id: str) -> bool:
    """Stop a running GA run (its queued steps are then skipped); False if not running."""
    if ga_store.get_run(run_id) is None:
        raise UnknownRunError(f"unknown GA run {run_id!r}")
    return ga_store.cancel_run(run_id, actor=ACTOR)
