"""The audit log, filtered: what happened to what, by whom."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hms_celery.store import repository


def audit_log(
    *,
    subject: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = 100,
) -> list[dict[str, Any]]:
    """The newest ``limit`` audit events matching every filter, oldest first: about
    ``subject``; with action ``action`` or a sub-action of it (``task`` matches
    ``task.submitted``; ``recovery.`` or ``recovery*`` is a prefix); at or after ``since``,
    before ``until`` (naive datetimes are UTC).  Each event: ``id``, ``at``, ``actor``,
    ``action``, ``subject``, ``details``."""
    return repository.audit_events(
        subject=subject, limit=limit, action=action, since=since, until=until
    )
