"""Typed records the store hands out (JSON-ready: times are ISO strings, UTC).

These are the views that cross module boundaries — a task's status, a GA run and its
generations — so that a key read anywhere is checked by the type checker.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NotRequired, TypedDict


class AttemptView(TypedDict):
    """One execution of a task on an agent."""

    number: int
    agent: str
    pid: int | None
    started_at: str | None
    ended_at: str | None
    outcome: str | None
    error: str | None
    leg: dict[str, Any] | None  # a race leg's attempt: which leg


class TaskTimings(TypedDict):
    """When a task was submitted, started and finished, and how long it took (seconds)."""

    created_at: str | None
    started_at: str | None
    finished_at: str | None
    prover_s: float | None
    total_s: float | None


class TaskStatusView(TypedDict):
    """The store's record of a task (``hms status``, ``client.query_task_status``)."""

    task_id: str
    kind: str
    queue: str
    state: str
    theorem_id: str | None
    family: str | None
    verdict: str | None
    error: str | None
    reason: str | None
    counterexample: dict[str, Any] | None
    bound: int | None
    backend: str | None
    strategy: dict[str, Any] | None
    stats: dict[str, Any] | None
    confirmed_by: dict[str, Any] | None
    proof: dict[str, Any] | None
    agent: str | None
    attempts: list[AttemptView]
    race: NotRequired[dict[str, Any]]  # backend="race": every leg
    payload: dict[str, Any]
    timings: TaskTimings


class GARunRecord(TypedDict):
    """A GA run (``hms ga show``, ``client.query_ga_run``)."""

    id: str
    family: str
    status: str
    trigger: str
    population_size: int
    generations: int
    seed: int
    rlimit: int
    timeout: float
    config: dict[str, Any]
    current_generation: int
    best_genome: dict[str, Any] | None
    best_fitness: dict[str, Any] | None
    baselines: dict[str, Any]
    promotion: str
    error: str | None
    created_at: str | None
    updated_at: str | None
    finished_at: str | None
    training: NotRequired[list[Any]]  # the instances (full records)
    training_size: NotRequired[int]  # their number (listings)


class GenerationRecord(TypedDict):
    """One generation of a GA run, with its population and figures once scored."""

    number: int
    status: str
    population: list[Any]
    fitness: list[Any] | None  # aligned with population
    best: float | None
    mean: float | None
    worst: float | None
    diversity: float | None
    evaluations: int
    wall_s: float | None
    created_at: str | None
    published_at: str | None
    scored_at: str | None


class GenerationView(GenerationRecord):
    """A generation as the client shows it: its best genome and distinct genomes too."""

    best_genome: NotRequired[dict[str, Any]]
    best_fitness: NotRequired[dict[str, Any]]
    distinct: int


class GAProgress(TypedDict):
    """How far a run is: generations scored, of how many, and the one being evaluated."""

    scored: int
    generations: int
    evaluating: int | None


class GARunView(GARunRecord):
    """A run with its generations and progress (``client.query_ga_run``)."""

    generation_records: list[GenerationView]
    progress: GAProgress


def iso(value: datetime | None) -> str | None:
    """A store time as the ISO string these records carry (None stays None)."""
    return value.isoformat() if value else None
