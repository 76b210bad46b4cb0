"""An in-memory GA store and a recording publisher: the GA steps' stub control plane.

They keep the real store's contract (tasks recorded once by id, a generation scored once,
the next generation created in the same step, the run ended when there is none) so the
steps' decisions can be tested without services — as Dramatiq's ``StubBroker`` does for
brokers.  The real-service tests (``test_ga_stack.py``) stay beside them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hms_celery.runtime.publish import Publication


@dataclass
class InMemoryGAStore:
    """The GA store's contract on dicts (see :class:`hms_celery.genetic.steps.GAStore`)."""

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    gens: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    scored: list[tuple[str, int]] = field(default_factory=list)

    def add_run(self, run: dict[str, Any]) -> None:
        self.runs[run["id"]] = {
            "status": "RUNNING",
            "current_generation": 0,
            "best_genome": None,
            "best_fitness": None,
            "baselines": {},
            "promotion": "none",
            **run,
        }

    def get_run(self, run_id: str) -> Any:
        run = self.runs.get(run_id)
        return copy.deepcopy(run) if run else None

    def get_generation(self, run_id: str, number: int) -> Any:
        gen = self.gens.get((run_id, number))
        return copy.deepcopy(gen) if gen else None

    def ensure_generation(self, run_id: str, number: int, population: list[dict[str, Any]]) -> Any:
        self.gens.setdefault((run_id, number), _generation(number, population))
        return self.get_generation(run_id, number)

    def record_tasks(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.tasks.setdefault(row["id"], {"status": "PENDING", **row})

    def evaluation_results(self, task_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {
            i: {"status": self.tasks[i]["status"], **self.results.get(i, {})}
            for i in task_ids
            if i in self.tasks
        }

    def mark_published(self, run_id: str, number: int, evaluations: int) -> None:
        self.gens[(run_id, number)]["evaluations"] = evaluations
        self.gens[(run_id, number)]["published"] = True

    def record_scores(
        self,
        run_id: str,
        number: int,
        *,
        figures: dict[str, Any],
        next_population: list[dict[str, Any]] | None,
        run_updates: dict[str, Any],
        actor: str,
    ) -> bool:
        gen = self.gens[(run_id, number)]
        if gen["status"] != "EVALUATING":
            return False
        gen.update(status="SCORED", **figures)
        self.scored.append((run_id, number))
        run = self.runs[run_id]
        run.update(run_updates)
        if next_population is None:
            run["status"] = "DONE"
        else:
            run["current_generation"] = number + 1
            self.gens[(run_id, number + 1)] = _generation(number + 1, next_population)
        return True

    def supersede_steps(self, run_id: str, kind: str) -> None:
        for task in self.tasks.values():
            mine = task["family"] == f"ga:{run_id}" and task["kind"] == kind
            if mine and task["status"] == "PENDING":
                task["status"] = "DONE"

    # --- what the workers would do
    def finish(
        self, task_id: str, verdict: str, *, rlimit: int = 1000, seconds: float = 0.1
    ) -> None:
        """A fitness proof committed ``verdict``."""
        self.tasks[task_id]["status"] = "DONE"
        self.results[task_id] = {"verdict": verdict, "rlimit": rlimit, "seconds": seconds}


def _generation(number: int, population: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "number": number,
        "status": "EVALUATING",
        "population": copy.deepcopy(population),
        "fitness": None,
        "best": None,
        "mean": None,
        "worst": None,
        "diversity": None,
        "evaluations": 0,
        "wall_s": None,
        "created_at": None,
        "published_at": None,
        "scored_at": None,
    }


@dataclass
class RecordingPublisher:
    """Records what the steps publish instead of sending it."""

    published: list[Publication] = field(default_factory=list)
    chords: list[tuple[list[Publication], Publication]] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)

    def publish(self, pub: Publication) -> None:
        self.published.append(pub)

    def fan_out(self, header: list[Publication], body: Publication) -> None:
        self.chords.append((list(header), body))

    def settle(self, run: Any) -> None:
        self.settled.append(run["id"])
