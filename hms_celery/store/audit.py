"""The audit log: append an event inside a transaction, and read events back by filter."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from hms_celery.store.db import session_scope
from hms_celery.store.models import AuditEvent, utcnow
from hms_celery.store.records import iso

# Declarative `__table__` is typed as FromClause; for this model it is a Table.
_AUDIT = cast(Table, AuditEvent.__table__)


def audit(
    conn: Connection | Session, actor: str, action: str, subject: str | None, **details: Any
) -> None:
    """Append one audit event inside ``conn``'s transaction."""
    conn.execute(
        insert(_AUDIT).values(
            at=utcnow(), actor=actor, action=action, subject=subject, details=details
        )
    )


def audit_events(
    subject: str | None = None,
    limit: int | None = 100,
    *,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """The newest ``limit`` audit events (None: all) that match every filter given, oldest
    first: about ``subject``; whose action is ``action`` or starts with ``action.`` (an
    ``action`` ending in ``.`` or ``*`` is a plain prefix: ``recovery.``); at or after
    ``since`` and before ``until`` (aware datetimes; naive ones are taken as UTC)."""
    with session_scope() as session:
        query = select(AuditEvent).order_by(AuditEvent.id.desc())
        if limit is not None:
            query = query.limit(limit)
        if subject is not None:
            query = query.where(AuditEvent.subject == subject)
        if action:
            if action.endswith(("*", ".")):
                prefix = action.rstrip("*")
                query = query.where(AuditEvent.action.startswith(prefix, autoescape=True))
            else:
                query = query.where(
                    (AuditEvent.action == action)
                    | AuditEvent.action.startswith(action + ".", autoescape=True)
                )
        if since is not None:
            query = query.where(AuditEvent.at >= since)  # UTCDateTime: naive is UTC
        if until is not None:
            query = query.where(AuditEvent.at < until)
        events = list(session.scalars(query))
        return [
            {
                "id": e.id,
                "at": iso(e.at),
                "actor": e.actor,
                "action": e.action,
                "subject": e.subject,
                "details": e.details,
            }
            for e in reversed(events)
        ]
