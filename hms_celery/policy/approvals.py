"""Approvals: the human in the loop for actions a policy rule parks.

:func:`hms_celery.policy.engine.authorize` parks an action as a PENDING approval.  A person
lists them (``hms approvals``) and decides (:func:`approve` / :func:`deny`); the supervisor
sweep carries approved ones out (it has the broker and the agent hosts) and drops those
nobody decided within ``HMS_APPROVAL_TTL`` (:func:`expire_due`).  Every step is audited
(``approval.approved``, ``approval.denied``, ``approval.running``, ``approval.done``,
``approval.failed``, ``approval.expired``, ``approval.superseded``).
"""

from __future__ import annotations

import getpass
from typing import Any

from hms_celery.errors import InputError
from hms_celery.policy import rules
from hms_celery.store import approvals as store
from hms_celery.store import ga as ga_store
from hms_celery.store.models import ApprovalStatus, PromotionState


class ApprovalError(InputError):
    """An approval id that does not exist or can no longer be decided."""


def person() -> str:
    """The actor name of the person at this terminal (``cli:<user>``)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (a container)
        return "cli:unknown"


def listing(include_all: bool = False, limit: int = 200) -> list[dict[str, Any]]:
    """Pending approvals (``include_all``: every approval), oldest first."""
    statuses = None if include_all else {ApprovalStatus.PENDING}
    return store.list_approvals(statuses, limit=limit)


def approve(approval_id: int, *, actor: str | None = None) -> dict[str, Any]:
    """Approve a PENDING approval: the next supervisor sweep carries the action out."""
    return _decide(approval_id, ApprovalStatus.APPROVED, actor or person())


def deny(approval_id: int, *, actor: str | None = None) -> dict[str, Any]:
    """Deny a PENDING approval: the action is dropped (see :func:`dropped`)."""
    row = _decide(approval_id, ApprovalStatus.DENIED, actor or person())
    dropped(row)
    return row


def dropped(row: dict[str, Any]) -> None:
    """What a denied or expired approval leaves behind, said where people look: a requeue's
    task stays recorded and unqueued with the reason as its error; a promotion's run shows
    ``denied``/``expired``.  Other actions simply do not happen (a parked respawn leaves the
    agent FAILED, visible in ``hms agents --all``)."""
    how = "denied" if row["status"] == ApprovalStatus.DENIED else "expired"
    if row["kind"] == rules.REQUEUE:
        store.hold_task(
            row["subject"],
            f"requeue {how} (approval {row['id']}, rule {row['rule']!r}): the task is kept, "
            "unqueued; submit it again to run it",
        )
    elif row["kind"] == rules.STRATEGY_PROMOTE and row["payload"].get("run_id"):
        ga_store.set_promotion(
            row["payload"]["run_id"],
            PromotionState(how),
            actor=row.get("decided_by") or "supervisor",
            approval_id=row["id"],
        )


def _decide(approval_id: int, status: str, actor: str) -> dict[str, Any]:
    done = store.transition(
        approval_id, ApprovalStatus.PENDING, status, actor=actor, unexpired=True
    )
    if done is not None:
        return done
    found = store.get(approval_id)
    if found is None:
        raise ApprovalError(f"no approval {approval_id} (`hms approvals --all` lists them)")
    if found["status"] == ApprovalStatus.PENDING:  # its time is up; the sweep drops it
        store.transition(approval_id, ApprovalStatus.PENDING, ApprovalStatus.EXPIRED, actor=actor)
        raise ApprovalError(f"approval {approval_id} expired at {found['expires_at']}")
    raise ApprovalError(
        f"approval {approval_id} is {found['status']}"
        + (f" (decided by {found['decided_by']})" if found.get("decided_by") else "")
        + ": only a PENDING approval can be decided"
    )


def expire_due(actor: str = "supervisor") -> list[dict[str, Any]]:
    """Drop every PENDING approval whose ``HMS_APPROVAL_TTL`` has passed; returns them."""
    expired = []
    for approval_id in store.due_for_expiry():
        row = store.transition(
            approval_id, ApprovalStatus.PENDING, ApprovalStatus.EXPIRED, actor=actor,
            result="nobody decided within HMS_APPROVAL_TTL: dropped",
        )  # fmt: skip
        if row is not None:
            expired.append(row)
    return expired


def claim_approved(actor: str = "supervisor", stack: str | None = None) -> list[dict[str, Any]]:
    """Take every APPROVED approval of ``stack`` for carrying out (APPROVED → RUNNING, once
    each); those another stack asked for are left to that stack's supervisor."""
    claimed = []
    for approval_id in store.approved_ids():
        found = store.get(approval_id)
        theirs = (found or {}).get("payload", {}).get("stack")
        if found is None or (stack is not None and theirs not in (None, stack)):
            continue
        row = store.transition(
            approval_id, ApprovalStatus.APPROVED, ApprovalStatus.RUNNING, actor=actor
        )
        if row is not None:
            claimed.append(row)
    return claimed


def finish(approval_id: int, *, ok: bool, result: str, actor: str = "supervisor") -> None:
    """Record the end of carrying out an approval (RUNNING → DONE | FAILED)."""
    status = ApprovalStatus.DONE if ok else ApprovalStatus.FAILED
    store.transition(approval_id, ApprovalStatus.RUNNING, status, actor=actor, result=result)


def supersede(kind: str, subject: str, *, actor: str, why: str) -> int | None:
    """Close the PENDING approval of ``kind`` about ``subject`` that another path made moot
    (e.g. ``hms strategies promote`` of a run whose promotion was waiting); returns its id."""
    found = store.open_for(kind, subject)
    if found is None or found["status"] != ApprovalStatus.PENDING:
        return None
    store.transition(
        found["id"], ApprovalStatus.PENDING, ApprovalStatus.SUPERSEDED, actor=actor, result=why
    )
    return int(found["id"])


def open_for(kind: str, subject: str) -> dict[str, Any] | None:
    """The open approval of ``kind`` about ``subject``, if any."""
    return store.open_for(kind, subject)
