"""GA run rows: create one per family at a time, read, list, end, mark their promotion."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from hms_celery.errors import InputError
from hms_celery.store.audit import audit
from hms_celery.store.db import connection_scope
from hms_celery.store.models import GARun, GARunStatus, PromotionState, utcnow
from hms_celery.store.records import GARunRecord, iso

# Declarative `__table__` is typed as FromClause; for this model it is a Table.
_RUNS = cast(Table, GARun.__table__)


class ActiveRunError(InputError):
    """The family already has a running GA run (one at a time per family)."""


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
        created_at=iso(row["created_at"]),
        updated_at=iso(row["updated_at"]),
        finished_at=iso(row["finished_at"]),
    )
    if training:
        data["training"] = row["training"]
    else:
        data["training_size"] = len(row["training"] or ())
    return cast(GARunRecord, data)
