"""The GA run logic that is not Celery: what a generation evaluates and how it is scored.

A generation's fitness evaluations are proof tasks whose ids are derived from their content
(run, genome, instance): re-planning a generation gives the same ids, a genome met again
in a later generation reuses its finished evaluations, and the store records each once.
Randomness comes only from ``random.Random(f"{seed}/{generation}")``, so a run is a pure
function of its seed, its training set and the (deterministic, rlimit-bounded) verdicts.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from statistics import fmean
from typing import Any

from hms_celery.genetic.fitness import Evaluation, Fitness, score, select_next
from hms_celery.genetic.genome import (
    Z3_DEFAULT_GENOME,
    diversity,
    genome_key,
    genome_size,
    seed_population,
)
from hms_celery.store.records import GARunRecord, GenerationRecord
from hms_celery.verification.verdict import Verdict

#: Namespace of the content-derived task ids of GA runs.
NAMESPACE = uuid.UUID("5d0c7f5e-3a7e-4f2c-9d55-6c1f0c8e9a41")

#: Request fields a fitness evaluation sets itself.
_EVALUATION_FIELDS = ("strategy", "timeout", "rlimit")

#: Operator settings of a run (stored in ``ga_runs.config``).
DEFAULT_OPERATORS: dict[str, Any] = {"elite": 1, "tournament": 3, "cxpb": 0.6, "mutpb": 0.4}


@dataclass(frozen=True)
class EvaluationTask:
    """One fitness proof: ``genome`` on training instance ``instance_id``."""

    task_id: str
    genome_index: int
    instance_id: str
    payload: dict[str, Any]


def step_id(run_id: str, step: str) -> str:
    """The task id of a run step (``"gen/3"``, ``"score/3"``)."""
    return str(uuid.uuid5(NAMESPACE, f"{run_id}/{step}"))


def evaluation_id(run_id: str, genome: dict[str, Any], instance_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{run_id}/{genome_key(genome)}/{instance_id}"))


def rng_for(seed: int, generation: int) -> random.Random:
    """The random stream of one generation (string seeds hash the same in every process)."""
    return random.Random(f"hms-ga/{seed}/{generation}")


def initial_population(run: GARunRecord) -> list[dict[str, Any]]:
    """Generation 0: Z3's plain solver, then random genomes, all from the run's seed."""
    return seed_population(
        run["population_size"], rng_for(run["seed"], 0), seeds=(Z3_DEFAULT_GENOME,)
    )


def evaluated_genomes(run: GARunRecord, generation: GenerationRecord) -> list[dict[str, Any]]:
    """The genomes a generation evaluates: its population, plus (generation 0) the run's
    baselines, which are scored on the same instances for comparison only."""
    genomes = list(generation["population"])
    if generation["number"] == 0:
        genomes += list((run["config"].get("baselines") or {}).values())
    return genomes


def plan(run: GARunRecord, genomes: list[dict[str, Any]]) -> list[EvaluationTask]:
    """One evaluation per distinct (genome, instance), in a stable order."""
    tasks: dict[str, EvaluationTask] = {}
    for index, genome in enumerate(genomes):
        for instance in run["training"]:
            task_id = evaluation_id(run["id"], genome, instance["id"])
            if task_id in tasks:
                continue
            request = {k: v for k, v in instance["request"].items() if k not in _EVALUATION_FIELDS}
            payload = {
                **request,
                "theorem_id": instance["id"],
                "strategy": genome,
                "rlimit": run["rlimit"],
                "timeout": run["timeout"],
            }
            tasks[task_id] = EvaluationTask(task_id, index, instance["id"], payload)
    return list(tasks.values())


def fitness_of(
    run: GARunRecord, genome: dict[str, Any], results: dict[str, dict[str, Any]]
) -> Fitness:
    """Score ``genome`` from the stored results of its evaluations.  A missing result or a
    task that failed without a verdict counts as an ERROR: a failure, never a success."""
    evaluations = []
    for instance in run["training"]:
        found = results.get(evaluation_id(run["id"], genome, instance["id"])) or {}
        evaluations.append(
            Evaluation(
                instance_id=instance["id"],
                verdict=found.get("verdict") or Verdict.ERROR.value,
                rlimit_used=found.get("rlimit"),
                seconds=float(found.get("seconds") or 0.0),
                expected=instance.get("expected"),
            )
        )
    return score(
        evaluations, rlimit=run["rlimit"], timeout_s=run["timeout"], size=genome_size(genome)
    )


def figures(population: list[dict[str, Any]], fitnesses: list[Fitness]) -> dict[str, Any]:
    """What a scored generation stores: every fitness and the summary figures."""
    scalars = [f.scalar() for f in fitnesses]
    return {
        "fitness": [f.to_json() for f in fitnesses],
        "best": max(scalars),
        "mean": fmean(scalars),
        "worst": min(scalars),
        "diversity": diversity(population),
        "wall_s": round(sum(f.time_s for f in fitnesses), 6),
    }


def best_of(
    population: list[dict[str, Any]], fitnesses: list[Fitness]
) -> tuple[dict[str, Any], Fitness]:
    """The fittest genome (the first of equals, so the choice is deterministic)."""
    index = max(range(len(population)), key=lambda i: (fitnesses[i].key(), -i))
    return population[index], fitnesses[index]


def next_population(
    run: GARunRecord, generation: int, population: list[dict[str, Any]], fitness: list[Fitness]
) -> list[dict[str, Any]]:
    """Selection, crossover and mutation for ``generation + 1`` (seeded by the run)."""
    ops = {**DEFAULT_OPERATORS, **(run["config"].get("operators") or {})}
    return select_next(
        population,
        fitness,
        rng_for(run["seed"], generation + 1),
        elite=int(ops["elite"]),
        tournament=int(ops["tournament"]),
        cxpb=float(ops["cxpb"]),
        mutpb=float(ops["mutpb"]),
    )


def is_better(candidate: dict[str, Any] | None, incumbent: dict[str, Any] | None) -> bool:
    """Whether fitness ``candidate`` (JSON) strictly beats ``incumbent`` (JSON)."""
    if candidate is None:
        return False
    if incumbent is None:
        return True
    return Fitness.from_json(candidate).key() > Fitness.from_json(incumbent).key()


def evaluate_inline(
    genome: dict[str, Any],
    instances: list[dict[str, Any]],
    *,
    rlimit: int,
    timeout_s: float,
    max_size: int = 20,
) -> tuple[Fitness, list[Evaluation]]:
    """Score ``genome`` on ``instances`` in this process (no Celery): the same proofs and
    the same scoring as a run's fitness tasks."""
    from hms_celery.verification.request import ProofRequest

    evaluations = []
    for instance in instances:
        request = {k: v for k, v in instance["request"].items() if k not in _EVALUATION_FIELDS}
        outcome = ProofRequest.build(
            **{**request, "theorem_id": instance["id"]},
            strategy=genome,
            rlimit=rlimit,
            timeout=timeout_s,
        ).run(timeout=timeout_s, max_size=max_size, rlimit=rlimit, confirm=False)
        evaluations.append(
            Evaluation(
                instance_id=instance["id"],
                verdict=outcome.verdict.value,
                rlimit_used=outcome.stats.get("rlimit_count"),
                seconds=outcome.elapsed_s,
                expected=instance.get("expected"),
            )
        )
    fitness = score(evaluations, rlimit=rlimit, timeout_s=timeout_s, size=genome_size(genome))
    return fitness, evaluations
