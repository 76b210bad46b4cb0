"""Family strategies: the promoted strategy of each theorem family (read by the proof path)."""

from __future__ import annotations

import threading
import time
from typing import Any, cast

from sqlalchemy import Table, insert, select, update

from hms_celery.store.audit import audit
from hms_celery.store.db import connection_scope
from hms_celery.store.models import FamilyStrategy, GARun, PromotionState, utcnow
from hms_celery.store.records import iso

# Declarative `__table__` is typed as FromClause; for these models it is a Table.
_RUNS = cast(Table, GARun.__table__)
_FAMILY = cast(Table, FamilyStrategy.__table__)


def family_strategy(family: str) -> dict[str, Any] | None:
    """The promoted strategy of ``family`` (its JSON), or None."""
    with connection_scope() as conn:
        return conn.execute(
            select(_FAMILY.c.strategy).where(_FAMILY.c.family == family)
        ).scalar_one_or_none()


#: Seconds a worker keeps a family's strategy before asking the store again.
CACHE_TTL_S = 2.0

_cache: dict[str, tuple[float, dict[str, Any] | None]] = {}
_lock = threading.Lock()


def strategy_for_family(family: str | None) -> dict[str, Any] | None:
    """The promoted strategy of ``family`` (JSON), or None: cached for :data:`CACHE_TTL_S`
    so the proof path asks the store at most once per family every few seconds."""
    if not family:
        return None
    now = time.monotonic()
    with _lock:
        hit = _cache.get(family)
        if hit is not None and now - hit[0] < CACHE_TTL_S:
            return hit[1]
    found = family_strategy(family)
    with _lock:
        _cache[family] = (now, found)
    return found


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
                "promoted_at": iso(r["promoted_at"]),
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
