"""The GA's own maintenance task, beside (not inside) the supervisor's health sweep.

Beat sends ``hms.ga.maintain`` every ``HMS_SWEEP_INTERVAL`` to the ``supervisor`` queue (the
always-on agent; a GA agent may be the one that died).  A Redis lock of its own makes sure
one runs at a time.  Each run resumes the GA runs that stalled
(:func:`~hms_celery.genetic.runs.resume_stalled`) and starts the runs failing families call
for (:func:`~hms_celery.genetic.runs.check_triggers`).

The approved GA actions (a parked run start or promotion that a person approved) are still
carried out by the supervisor, which claims every approval; this module registers their
executors with it, so the healing package never imports the GA.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from hms_celery.app import app
from hms_celery.errors import InfrastructureError
from hms_celery.genetic import promotion, runs
from hms_celery.healing.heartbeats import redis_client
from hms_celery.healing.supervisor import register_approved
from hms_celery.policy import rules

log = logging.getLogger(__name__)

MAINTAIN_TASK = "hms.ga.maintain"
MAINTAIN_QUEUE = "supervisor"
LOCK_KEY = "hms:ga:maintain:lock"


@app.task(name=MAINTAIN_TASK, ignore_result=True, acks_late=False, queue=MAINTAIN_QUEUE)
def maintain_task(reason: str = "beat") -> dict[str, Any]:
    """One GA maintenance round, unless another one holds the lock."""
    client = redis_client()
    lock = client.lock(LOCK_KEY, timeout=60, blocking=False)
    if not lock.acquire(blocking=False):
        return {"skipped": "another GA maintenance round holds the lock"}
    try:
        return maintain(reason=reason)
    finally:
        with contextlib.suppress(Exception):  # expired: nothing to release
            lock.release()


def maintain(*, reason: str = "manual") -> dict[str, Any]:
    """Keep GA runs moving and start the runs failing families call for; returns what was
    done.  One broken step does not stop the other; the broker or the store down does."""
    actions: list[dict[str, Any]] = []
    for step in (runs.resume_stalled, runs.check_triggers):
        try:
            actions.extend(step())
        except InfrastructureError:
            raise
        except Exception:
            log.exception("GA maintenance: %s failed", step.__name__)
    return {"reason": reason, "actions": actions}


@register_approved(rules.GA_RUN_START)
def _start_approved_run(payload: dict[str, Any], actor: str) -> str:
    run_id = runs.start_run(**payload["kwargs"], run_id=payload["run_id"], authorized=True)
    return f"GA run {run_id} started"


@register_approved(rules.STRATEGY_PROMOTE)
def _promote_approved(payload: dict[str, Any], actor: str) -> str:
    done = promotion.promote(payload["run_id"], actor=actor)
    return f"strategy {done['strategy']['name']} promoted for {done['family']}"
