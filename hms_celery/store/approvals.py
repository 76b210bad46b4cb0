"""Store operations of approvals: agent actions a policy rule parked until a person decides.

Every state change is one conditional UPDATE (it succeeds once, so two people approving the
same action, or two sweeps carrying it out, cannot both win) with its audit event in the same
transaction.  States: PENDING → APPROVED → RUNNING → DONE | FAILED, PENDING → DENIED |
EXPIRED | SUPERSEDED.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from hms_celery.store.audit import audit
from hms_celery.store.db import connection_scope
from hms_celery.store.models import Approval, ApprovalStatus, Task, TaskStatus, utcnow

# Declarative `__table__` is typed as FromClause; for these models it is a Table.
_APPROVALS = cast(Table, Approval.__table__)
_TASKS = cast(Table, Task.__table__)


def create(
    conn: Connection,
    *,
    kind: str,
    subject: str,
    actor: str,
    rule: str,
    reason: str,
    details: dict[str, Any],
    payload: dict[str, Any],
    ttl_s: float,
) -> int:
    """Insert a PENDING approval inside ``conn``'s transaction; returns its id."""
    now = utcnow()
    result = conn.execute(
        insert(_APPROVALS)
        .values(
            kind=kind,
            subject=subject,
            status=ApprovalStatus.PENDING,
            actor=actor,
            rule=rule,
            reason=reason,
            details=details,
            payload=payload,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
        )
        .returning(_APPROVALS.c.id)
    )
    return int(result.scalar_one())


def get(approval_id: int) -> dict[str, Any] | None:
    """One approval as JSON-ready data, or None."""
    with connection_scope() as conn:
        row = conn.execute(select(_APPROVALS).where(_APPROVALS.c.id == approval_id)).mappings()
        found = row.first()
        return _json(found) if found else None


def list_approvals(statuses: set[str] | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Approvals (only those in ``statuses``, if given), oldest first."""
    query = select(_APPROVALS).order_by(_APPROVALS.c.id.desc()).limit(limit)
    if statuses:
        query = query.where(_APPROVALS.c.status.in_(sorted(statuses)))
    with connection_scope() as conn:
        rows = list(conn.execute(query).mappings())
    return [_json(r) for r in reversed(rows)]


def open_for(kind: str, subject: str) -> dict[str, Any] | None:
    """The open (pending, approved or running) approval of ``kind`` about ``subject``."""
    query = select(_APPROVALS).where(
        _APPROVALS.c.kind == kind,
        _APPROVALS.c.subject == subject,
        _APPROVALS.c.status.in_(sorted(ApprovalStatus.OPEN)),
    )
    with connection_scope() as conn:
        row = conn.execute(query.limit(1)).mappings().first()
    return _json(row) if row else None


def transition(
    approval_id: int,
    before: str | set[str],
    after: str,
    *,
    actor: str,
    result: str | None = None,
    now: datetime | None = None,
    unexpired: bool = False,
) -> dict[str, Any] | None:
    """Move an approval from ``before`` to ``after`` (audited ``approval.<after>``); returns
    the updated row, or None when it was not in ``before`` (someone else won).

    ``unexpired``: only while ``expires_at`` is in the future (a person's decision)."""
    now = now or utcnow()
    olds = {before} if isinstance(before, str) else set(before)
    values: dict[str, Any] = {"status": after}
    if after in (ApprovalStatus.APPROVED, ApprovalStatus.DENIED):
        values.update(decided_at=now, decided_by=actor)
    if after in (
        ApprovalStatus.DONE,
        ApprovalStatus.FAILED,
        ApprovalStatus.EXPIRED,
        ApprovalStatus.SUPERSEDED,
    ):
        values["done_at"] = now
    if result is not None:
        values["result"] = result[:4000]
    query = update(_APPROVALS).where(
        _APPROVALS.c.id == approval_id, _APPROVALS.c.status.in_(sorted(olds))
    )
    if unexpired:
        query = query.where(_APPROVALS.c.expires_at > now)
    with connection_scope() as conn:
        if conn.execute(query.values(**values)).rowcount != 1:
            return None
        row = conn.execute(select(_APPROVALS).where(_APPROVALS.c.id == approval_id)).mappings()
        data = _json(row.one())
        audit(
            conn,
            actor,
            f"approval.{after.lower()}",
            data["subject"],
            approval_id=approval_id,
            kind=data["kind"],
            rule=data["rule"],
            **({"result": result} if result is not None else {}),
        )
    return data


def due_for_expiry(now: datetime | None = None) -> list[int]:
    """Ids of PENDING approvals whose time is up."""
    now = now or utcnow()
    query = select(_APPROVALS.c.id).where(
        _APPROVALS.c.status == ApprovalStatus.PENDING, _APPROVALS.c.expires_at <= now
    )
    with connection_scope() as conn:
        return [int(i) for i in conn.execute(query.order_by(_APPROVALS.c.id)).scalars()]


def approved_ids() -> list[int]:
    """Ids of APPROVED approvals not yet carried out, oldest first."""
    query = select(_APPROVALS.c.id).where(_APPROVALS.c.status == ApprovalStatus.APPROVED)
    with connection_scope() as conn:
        return [int(i) for i in conn.execute(query.order_by(_APPROVALS.c.id)).scalars()]


def _json(row: RowMapping) -> dict[str, Any]:
    data = dict(row)
    for key in ("created_at", "expires_at", "decided_at", "done_at"):
        data[key] = data[key].isoformat() if data[key] else None
    return data


def hold_task(task_id: str, why: str) -> bool:
    """Keep an unfinished task recorded but unqueued: PENDING with ``why`` as its error (a
    requeue the policy denied or parked); returns whether the task was unfinished."""
    with connection_scope() as conn:
        done = conn.execute(
            update(_TASKS)
            .where(_TASKS.c.id == task_id, _TASKS.c.status.not_in(sorted(TaskStatus.FINAL)))
            .values(status=TaskStatus.PENDING, error=why[:4000], updated_at=utcnow())
        )
        return done.rowcount == 1
