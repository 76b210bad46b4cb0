"""Store operations of the genetic strategy search: runs, generations, family strategies.

Every step of a run is idempotent through these functions: a generation's population is
stored once (the first writer wins), a generation is scored once (a conditional update from
EVALUATING to SCORED), and the next generation is created in the same transaction as the
scoring of the previous one.  A redelivered or requeued task therefore never scores a
generation twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from hms_celery.errors import InputError
from hms_celery.store import repository
from hms_celery.store.db import connection_scope, dialect_insert
from hms_celery.store.models import (
    FamilyStrategy,
    GAGeneration,
    GARun,
    GARunStatus,
    GenerationStatus,
    PromotionState,
    ProofResult,
    Task,
    TaskStatus,
    utcnow,
)
from hms_celery.store.records import GARunRecord, GenerationRecord
from hms_celery.store.repository import audit

# Declarative `__table__` is typed as FromClause; for these models it is a Table.
_RUNS = cast(Table, GARun.__table__)
_GENS = cast(Table, GAGeneration.__table__)
_FAMILY = cast(Table, FamilyStrategy.__table__)
_TASKS = cast(Table, Task.__table__)
_RESULTS = cast(Table, ProofResult.__table__)

EVALUATING = GenerationStatus.EVALUATING
SCORED = GenerationStatus.SCORED

#: Task kinds of a run's work (``tasks.kind``); fitness proofs never count as family failures.
FITNESS_KIND = "fitness"
GENERATION_KIND = "ga.generation"
SCORE_KIND = "ga.score"


class ActiveRunError(InputError):
    """The family already has a running GA run (one at a time per family)."""


def run_label(run_id: str) -> str:
    """The ``tasks.family`` label of every task belonging to ``run_id``."""
    return f"ga:{run_id}"


# ----------------------------------------------------------------------------- runs
def create_run(row: dict[str, Any], *, actor: str) -> None:
    """Insert a new RUNNING run; :class:`ActiveRunError` if its family already has one."""
    now = utcnow()
    values = {
        "status": GARunStatus.RUNNING,
        "current_generation": 0,
        "baselines": {},
        "promotion": PromotionState.NONE,
        "created_at": now,
        "updated_at": now,
        **row,
    }
    try:
        with connection_scope() as conn:
            conn.execute(insert(_RUNS).values(**values))
            audit(
                conn,
                actor,
                "ga.run.started",
                row["id"],
                family=row["family"],
                trigger=row["trigger"],
                population=row["population_size"],
                generations=row["generations"],
                seed=row["seed"],
                training=[item["id"] for item in row["training"]],
            )
    except IntegrityError:
        active = active_run(row["family"])
        raise ActiveRunError(
            f"family {row['family']!r} already has a running GA run"
            + (f": {active['id']}" if active else "")
        ) from None


def get_run(run_id: str) -> GARunRecord | None:
    with connection_scope() as conn:
        row = conn.execute(select(_RUNS).where(_RUNS.c.id == run_id)).mappings().first()
        return _run_json(row) if row else None


def active_run(family: str) -> GARunRecord | None:
    with connection_scope() as conn:
        row = (
            conn.execute(
                select(_RUNS).where(
                    _RUNS.c.family == family, _RUNS.c.status.in_(GARunStatus.ACTIVE)
                )
            )
            .mappings()
            .first()
        )
        return _run_json(row) if row else None


def list_runs(family: str | None = None, limit: int = 50) -> list[GARunRecord]:
    """Runs, newest first (without their training sets)."""
    query = select(_RUNS).order_by(_RUNS.c.created_at.desc()).limit(limit)
    if family is not None:
        query = query.where(_RUNS.c.family == family)
    with connection_scope() as conn:
        return [_run_json(r, training=False) for r in conn.execute(query).mappings()]


def running_runs() -> list[GARunRecord]:
    with connection_scope() as conn:
        rows = conn.execute(select(_RUNS).where(_RUNS.c.status.in_(GARunStatus.ACTIVE)))
        return [_run_json(r) for r in rows.mappings()]


def latest_run_start(family: str) -> datetime | None:
    """When the family's newest run started (UTC, aware)."""
    with connection_scope() as conn:
        value = conn.execute(
            select(func.max(_RUNS.c.created_at)).where(_RUNS.c.family == family)
        ).scalar()
    return value  # UTCDateTime: aware, UTC


def touch_run(run_id: str) -> None:
    with connection_scope() as conn:
        conn.execute(update(_RUNS).where(_RUNS.c.id == run_id).values(updated_at=utcnow()))


def fail_run(run_id: str, error: str, *, actor: str) -> bool:
    """Stop a running run with ``error``; True if it was running."""
    return _end_run(run_id, GARunStatus.FAILED, actor, "ga.run.failed", error=error)


def cancel_run(run_id: str, *, actor: str) -> bool:
    """Stop a running run; True if it was running (its queued work is then skipped)."""
    return _end_run(run_id, GARunStatus.CANCELLED, actor, "ga.run.cancelled")


def _end_run(run_id: str, status: str, actor: str, action: str, error: str | None = None) -> bool:
    now = utcnow()
    with connection_scope() as conn:
        done = conn.execute(
            update(_RUNS)
            .where(_RUNS.c.id == run_id, _RUNS.c.status.in_(GARunStatus.ACTIVE))
            .values(status=status, error=error, finished_at=now, updated_at=now)
        ).rowcount
        if done:
            audit(conn, actor, action, run_id, **({"error": error} if error else {}))
        return bool(done)


def set_promotion(run_id: str, promotion: PromotionState, *, actor: str, **details: Any) -> None:
    with connection_scope() as conn:
        conn.execute(
            update(_RUNS)
            .where(_RUNS.c.id == run_id)
            .values(promotion=promotion, updated_at=utcnow())
        )
        audit(conn, actor, f"ga.promotion.{promotion}", run_id, **details)


# ----------------------------------------------------------------------------- generations
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


# ----------------------------------------------------------------------------- run tasks
def record_tasks(rows: Iterable[dict[str, Any]]) -> None:
    """Record tasks (``tasks`` rows: id, kind, queue, payload, theorem_id, family) unless
    they exist: a task id derived from its content is recorded once, however often a step
    is retried."""
    repository.record_submissions(list(rows), if_absent=True)


def evaluation_results(task_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{task id: {"status", "verdict", "rlimit", "seconds"}}`` for recorded tasks."""
    if not task_ids:
        return {}
    with connection_scope() as conn:
        rows = conn.execute(
            select(
                _TASKS.c.id,
                _TASKS.c.status,
                _RESULTS.c.verdict,
                _RESULTS.c.elapsed_s,
                _RESULTS.c.stats,
            )
            .select_from(_TASKS.outerjoin(_RESULTS, _RESULTS.c.task_id == _TASKS.c.id))
            .where(_TASKS.c.id.in_(list(task_ids)))
        )
        return {
            r.id: {
                "status": r.status,
                "verdict": r.verdict,
                "seconds": r.elapsed_s,
                "rlimit": (r.stats or {}).get("rlimit_count"),
            }
            for r in rows
        }


def run_activity(run_id: str) -> dict[str, Any]:
    """What the run's tasks are doing: ``{"open": {(kind, status): count}, "last": datetime}``
    (``open`` counts tasks not final yet; ``last`` is the latest change of any of them or of
    the run row)."""
    label = run_label(run_id)
    with connection_scope() as conn:
        rows = conn.execute(
            select(_TASKS.c.kind, _TASKS.c.status, func.count())
            .where(_TASKS.c.family == label, _TASKS.c.status.not_in(TaskStatus.FINAL))
            .group_by(_TASKS.c.kind, _TASKS.c.status)
        )
        open_ = {(r.kind, r.status): r[2] for r in rows}
        last_task = conn.execute(
            select(func.max(_TASKS.c.updated_at)).where(_TASKS.c.family == label)
        ).scalar()
        last_run = conn.execute(select(_RUNS.c.updated_at).where(_RUNS.c.id == run_id)).scalar()
    stamps = [t for t in (last_task, last_run) if t is not None]
    return {"open": open_, "last": max(stamps) if stamps else None}


def seconds_since(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (utcnow() - value).total_seconds()


def supersede_steps(run_id: str, kind: str) -> None:
    """Close the run's still-pending step tasks of ``kind`` (a duplicate did their work)."""
    now = utcnow()
    with connection_scope() as conn:
        conn.execute(
            update(_TASKS)
            .where(
                _TASKS.c.family == run_label(run_id),
                _TASKS.c.kind == kind,
                _TASKS.c.status == TaskStatus.PENDING,
            )
            .values(status=TaskStatus.DONE, error="superseded", finished_at=now, updated_at=now)
        )


# ----------------------------------------------------------------------------- failures
_FAILED_VERDICTS = ("UNKNOWN", "TIMEOUT")
_RESULT_TASKS = _RESULTS.join(_TASKS, _TASKS.c.id == _RESULTS.c.task_id)


def _failed_proofs(since: datetime, family: str | None = None) -> list[Any]:
    """Conditions on ``_RESULT_TASKS``: UNKNOWN/TIMEOUT verdicts of proof tasks (never a GA
    run's fitness evaluations) since ``since``, of ``family`` or of any family."""
    return [
        _RESULTS.c.created_at >= since,
        _RESULTS.c.verdict.in_(_FAILED_VERDICTS),
        _TASKS.c.kind == "proof",
        _TASKS.c.family.is_not(None) if family is None else _TASKS.c.family == family,
    ]


def failing_families(since: datetime, minimum: int) -> dict[str, int]:
    """Families with at least ``minimum`` UNKNOWN/TIMEOUT proof verdicts since ``since``."""
    count = func.count()
    with connection_scope() as conn:
        rows = conn.execute(
            select(_TASKS.c.family, count)
            .select_from(_RESULT_TASKS)
            .where(*_failed_proofs(since))
            .group_by(_TASKS.c.family)
            .having(count >= minimum)
        )
        return {r.family: r[1] for r in rows}


def failing_requests(family: str, since: datetime, limit: int = 8) -> list[dict[str, Any]]:
    """The newest distinct failing proof requests of ``family`` since ``since``:
    ``[{"id", "request", "expected": None}]`` (one per theorem id)."""
    with connection_scope() as conn:
        rows = conn.execute(
            select(_TASKS.c.id, _TASKS.c.theorem_id, _TASKS.c.payload)
            .select_from(_RESULT_TASKS)
            .where(*_failed_proofs(since, family))
            .order_by(_RESULTS.c.created_at.desc())
            .limit(200)
        )
        found: dict[str, dict[str, Any]] = {}
        for r in rows:
            key = r.theorem_id or r.id
            if key not in found and len(found) < limit:
                found[key] = {"id": key, "request": dict(r.payload), "expected": None}
        return list(found.values())


def count_failures(family: str, since: datetime) -> int:
    with connection_scope() as conn:
        return (
            conn.execute(
                select(func.count())
                .select_from(_RESULT_TASKS)
                .where(*_failed_proofs(since, family))
            ).scalar()
            or 0
        )


def ago(seconds: float) -> datetime:
    return utcnow() - timedelta(seconds=seconds)


# ----------------------------------------------------------------------------- family strategies
def family_strategy(family: str) -> dict[str, Any] | None:
    """The promoted strategy of ``family`` (its JSON), or None."""
    with connection_scope() as conn:
        return conn.execute(
            select(_FAMILY.c.strategy).where(_FAMILY.c.family == family)
        ).scalar_one_or_none()


def family_strategies() -> list[dict[str, Any]]:
    with connection_scope() as conn:
        rows = conn.execute(select(_FAMILY).order_by(_FAMILY.c.family)).mappings()
        return [
            {
                "family": r["family"],
                "strategy": r["strategy"],
                "run_id": r["run_id"],
                "fitness": r["fitness"],
                "promoted_by": r["promoted_by"],
                "promoted_at": _iso(r["promoted_at"]),
            }
            for r in rows
        ]


def promote(
    family: str,
    strategy: dict[str, Any],
    *,
    run_id: str | None,
    fitness: dict[str, Any] | None,
    actor: str,
) -> None:
    """Make ``strategy`` the family's strategy (replacing any earlier one), audited."""
    now = utcnow()
    with connection_scope() as conn:
        conn.execute(_FAMILY.delete().where(_FAMILY.c.family == family))
        conn.execute(
            insert(_FAMILY).values(
                family=family,
                strategy=strategy,
                run_id=run_id,
                fitness=fitness,
                promoted_by=actor,
                promoted_at=now,
            )
        )
        if run_id is not None:
            conn.execute(
                update(_RUNS)
                .where(_RUNS.c.id == run_id)
                .values(promotion=PromotionState.PROMOTED, updated_at=now)
            )
        audit(
            conn,
            actor,
            "strategy.promoted",
            family,
            run_id=run_id,
            strategy=strategy,
            fitness=fitness,
        )


# ----------------------------------------------------------------------------- JSON
def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _run_json(row: RowMapping, *, training: bool = True) -> GARunRecord:
    data: dict[str, Any] = {
        key: row[key]
        for key in (
            "id",
            "family",
            "status",
            "trigger",
            "population_size",
            "generations",
            "seed",
            "rlimit",
            "timeout",
            "config",
            "current_generation",
            "best_genome",
            "best_fitness",
            "baselines",
            "promotion",
            "error",
        )
    }
    data.update(
        created_at=_iso(row["created_at"]),
        updated_at=_iso(row["updated_at"]),
        finished_at=_iso(row["finished_at"]),
    )
    if training:
        data["training"] = row["training"]
    else:
        data["training_size"] = len(row["training"] or ())
    return cast(GARunRecord, data)


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
        "created_at": _iso(row["created_at"]),
        "published_at": _iso(row["published_at"]),
        "scored_at": _iso(row["scored_at"]),
    }
