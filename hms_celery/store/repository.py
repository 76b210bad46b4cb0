"""Store operations used by the client and the workers (a facade of their subject modules).

Tasks live in :mod:`~hms_celery.store.tasks`, attempts and results in
:mod:`~hms_celery.store.attempts`, the audit log in :mod:`~hms_celery.store.audit`; this module
keeps their names importable from where callers have always imported them.
"""

from __future__ import annotations

from hms_celery.store.attempts import (
    AttemptStart,
    abandon_attempt,
    begin_attempt,
    commit_result,
    complete_task,
    count_results,
    fail_attempt,
    insert_result,
    release_attempt,
    skip_attempt,
)
from hms_celery.store.audit import audit, audit_events
from hms_celery.store.tasks import (
    known_tasks,
    mark_rejected,
    mark_running,
    record_submission,
    record_submissions,
    task_status,
    task_statuses,
    unfinished,
)

__all__ = [
    "AttemptStart",
    "abandon_attempt",
    "audit",
    "audit_events",
    "begin_attempt",
    "commit_result",
    "complete_task",
    "count_results",
    "fail_attempt",
    "insert_result",
    "known_tasks",
    "mark_rejected",
    "mark_running",
    "record_submission",
    "record_submissions",
    "release_attempt",
    "skip_attempt",
    "task_status",
    "task_statuses",
    "unfinished",
]
