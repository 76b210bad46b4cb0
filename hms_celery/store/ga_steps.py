"""The task rows of a GA run's work: record them once, read their results and activity."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select, update

from hms_celery.store.db import connection_scope
from hms_celery.store.models import GARun, ProofResult, Task, TaskStatus, utcnow
from hms_celery.store.tasks import record_submissions

# Declarative `__table__` is typed as FromClause; for these models it is a Table.
_RUNS = cast(Table, GARun.__table__)
_TASKS = cast(Table, Task.__table__)
_RESULTS = cast(Table, ProofResult.__table__)


#: Task kinds of a run's work (``tasks.kind``); fitness proofs never count as family failures.
FITNESS_KIND = "fitness"
GENERATION_KIND = "ga.generation"
SCORE_KIND = "ga.score"


def run_label(run_id: str) -> str:
    """The ``tasks.family`` label of every task belonging to ``run_id``."""
    return f"ga:{run_id}"


def record_tasks(rows: Iterable[dict[str, Any]]) -> None:
    """Record tasks (``tasks`` rows: id, kind, queue, payload, theorem_id, family) unless
    they exist: a task id derived from its content is recorded once, however often a step
    is retried."""
    record_submissions(list(rows), if_absent=True)


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
