"""GA generations: store a population once, score a generation once (and start the next).

A generation's population is stored once (the first writer wins), a generation is scored once
(a conditional update from EVALUATING to SCORED), and the next generation is created in the
same transaction as the scoring of the previous one.  A redelivered or requeued task therefore
never scores a generation twice.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from hms_celery.store.audit import audit
from hms_celery.store.db import connection_scope, dialect_insert
from hms_celery.store.models import GAGeneration, GARun, GARunStatus, GenerationStatus, utcnow
from hms_celery.store.records import GenerationRecord, iso

# Declarative `__table__` is typed as FromClause; for these models it is a Table.
_RUNS = cast(Table, GARun.__table__)
_GENS = cast(Table, GAGeneration.__table__)


EVALUATING = GenerationStatus.EVALUATING
SCORED = GenerationStatus.SCORED


def ensure_generation(
    run_id: str, number: int, population: list[dict[str, Any]]
) -> GenerationRecord:
    """Store generation ``number`` with ``population`` unless it exists; returns the stored
    row (the first writer's population wins, so a re-run evaluates the same genomes)."""
    with connection_scope() as conn:
        conn.execute(
            dialect_insert(conn)(_GENS)
            .values(
                run_id=run_id,
                number=number,
                status=EVALUATING,
                population=population,
                evaluations=0,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing()
        )
        return _generation(conn, run_id, number)  # type: ignore[return-value]


def get_generation(run_id: str, number: int) -> GenerationRecord | None:
    with connection_scope() as conn:
        return _generation(conn, run_id, number)


def generations(run_id: str) -> list[GenerationRecord]:
    with connection_scope() as conn:
        rows = conn.execute(
            select(_GENS).where(_GENS.c.run_id == run_id).order_by(_GENS.c.number)
        ).mappings()
        return [_generation_json(r) for r in rows]


def mark_published(run_id: str, number: int, evaluations: int) -> None:
    """The generation's fitness proofs are on the broker."""
    now = utcnow()
    with connection_scope() as conn:
        conn.execute(
            update(_GENS)
            .where(_GENS.c.run_id == run_id, _GENS.c.number == number)
            .values(published_at=now, evaluations=evaluations)
        )
        conn.execute(update(_RUNS).where(_RUNS.c.id == run_id).values(updated_at=now))


def record_scores(
    run_id: str,
    number: int,
    *,
    figures: dict[str, Any],
    next_population: list[dict[str, Any]] | None,
    run_updates: dict[str, Any],
    actor: str,
) -> bool:
    """Score generation ``number`` once: store its ``figures`` (fitness list, best, mean,
    worst, diversity, wall_s), apply ``run_updates`` and either create the next generation
    with ``next_population`` or, when it is None, end the run DONE.  All in one transaction;
    False (and nothing changed) if the generation was already scored."""
    now = utcnow()
    with connection_scope() as conn:
        won = conn.execute(
            update(_GENS)
            .where(_GENS.c.run_id == run_id, _GENS.c.number == number, _GENS.c.status == EVALUATING)
            .values(status=SCORED, scored_at=now, **figures)
        ).rowcount
        if not won:
            return False
        values: dict[str, Any] = {**run_updates, "updated_at": now}
        if next_population is None:
            values.update(status=GARunStatus.DONE, finished_at=now)
        else:
            values["current_generation"] = number + 1
            conn.execute(
                insert(_GENS).values(
                    run_id=run_id,
                    number=number + 1,
                    status=EVALUATING,
                    population=next_population,
                    evaluations=0,
                    created_at=now,
                )
            )
        conn.execute(
            update(_RUNS)
            .where(_RUNS.c.id == run_id, _RUNS.c.status.in_(GARunStatus.ACTIVE))
            .values(**values)
        )
        audit(
            conn,
            actor,
            "ga.generation.scored",
            run_id,
            generation=number,
            best=figures.get("best"),
            mean=figures.get("mean"),
            diversity=figures.get("diversity"),
        )
        if next_population is None:
            audit(conn, actor, "ga.run.done", run_id, best=run_updates.get("best_fitness"))
        return True


def _generation(conn: Connection, run_id: str, number: int) -> GenerationRecord | None:
    row = (
        conn.execute(select(_GENS).where(_GENS.c.run_id == run_id, _GENS.c.number == number))
        .mappings()
        .first()
    )
    return _generation_json(row) if row else None


def _generation_json(row: RowMapping) -> GenerationRecord:
    return {
        "number": row["number"],
        "status": row["status"],
        "population": row["population"],
        "fitness": row["fitness"],
        "best": row["best"],
        "mean": row["mean"],
        "worst": row["worst"],
        "diversity": row["diversity"],
        "evaluations": row["evaluations"],
        "wall_s": row["wall_s"],
        "created_at": iso(row["created_at"]),
        "published_at": iso(row["published_at"]),
        "scored_at": iso(row["scored_at"]),
    }
