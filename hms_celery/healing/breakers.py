"""Circuit breakers per agent and per prover backend, fed by task outcomes.

Workers append each proof task's outcome (ok or failed: the prover crashed or reported an
internal error — never a verdict about the statement) to a Redis list; the supervisor sweep
drains it in order into a :class:`~hms_celery.policy.BreakerBoard` and acts on the changes:

* an agent's breaker OPEN → Celery remote control ``cancel_consumer`` on its queues (no more
  work routed there); HALF_OPEN after the cooldown → ``add_consumer`` (one trial); a success
  closes it, a failure re-opens it;
* a backend's breaker OPEN → its name is in the ``hms:breakers:open`` set and the client
  refuses new tasks for that backend with a clear error until the cooldown has passed.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis

from hms_celery.policy import BreakerBoard, BreakerState, CircuitBreaker
from hms_celery.policy.breaker import agent_key, backend_key
from hms_celery.runtime.outcomes import EVENTS_KEY, MAX_PENDING, OPEN_KEY, is_open, report_outcome

log = logging.getLogger(__name__)

__all__ = [
    "EVENTS_KEY",
    "MAX_PENDING",
    "OPEN_KEY",
    "agent_key",
    "apply",
    "backend_key",
    "drain",
    "is_open",
    "publish_open",
    "report_outcome",
    "restore",
]


def drain(client: redis.Redis) -> list[dict[str, Any]]:
    """Take every pending outcome, oldest first."""
    pipe = client.pipeline(transaction=True)
    pipe.lrange(EVENTS_KEY, 0, -1)
    pipe.delete(EVENTS_KEY)
    raw, _ = pipe.execute()
    return [json.loads(item) for item in raw]


def apply(
    board: BreakerBoard, events: list[dict[str, Any]], now: float
) -> dict[str, tuple[BreakerState, BreakerState]]:
    """Feed ``events`` into ``board`` and hand out due half-open trials.

    Returns the keys whose state changed: ``{key: (before, after)}``.
    """
    before = {key: board.get(key).state for key in {e["key"] for e in events}}
    for event in events:
        board.record(event["key"], bool(event["ok"]), float(event.get("at", now)))
    for key in list(board.keys()):
        before.setdefault(key, board.get(key).state)
        if board.get(key).state is BreakerState.OPEN:
            board.allows(key, now)  # cooldown over → HALF_OPEN (one trial)
    return {k: (b, board.get(k).state) for k, b in before.items() if b is not board.get(k).state}


def publish_open(client: redis.Redis, board: BreakerBoard, now: float) -> list[str]:
    """Replace the published set of open breakers; returns it."""
    keys = board.open_keys(now)
    pipe = client.pipeline(transaction=True)
    pipe.delete(OPEN_KEY)
    if keys:
        pipe.sadd(OPEN_KEY, *keys)
    pipe.execute()
    return keys


def restore(board: BreakerBoard, key: str, previous: CircuitBreaker | None) -> None:
    """Put ``key``'s breaker back as ``previous`` was (None: as a new one) — a breaker change
    the policy denied does not happen."""
    board.forget(key)
    breaker = board.get(key)
    if previous is not None:
        for name in ("state", "consecutive_failures", "opened_at", "trial_at"):
            setattr(breaker, name, getattr(previous, name))
