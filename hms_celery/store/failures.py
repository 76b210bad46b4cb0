"""Failing proofs by family: UNKNOWN/TIMEOUT verdicts of proof tasks (GA triggers read them)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, select

from hms_celery.store.db import connection_scope
from hms_celery.store.models import ProofResult, Task, utcnow

# Declarative `__table__` is typed as FromClause; for these models it is a Table.
_TASKS = cast(Table, Task.__table__)
_RESULTS = cast(Table, ProofResult.__table__)


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
