"""Task outcomes for the circuit breakers: what every worker reports after a task.

Workers append each proof task's outcome (ok, or failed: the prover crashed or reported an
internal error — never a verdict about the statement) to a Redis list, which the supervisor's
sweep drains (:mod:`hms_celery.healing.breakers`); the sweep publishes the backends whose
breaker is open in a set the submitters read.  This module is the part the workers and the
client need, below the healing layer.
"""

from __future__ import annotations

import json
import time

import redis

from hms_celery.policy.breaker import agent_key, backend_key

EVENTS_KEY = "hms:breaker:events"
OPEN_KEY = "hms:breakers:open"
MAX_PENDING = 10_000


def report_outcome(client: redis.Redis, agent_id: str, backend: str, ok: bool) -> None:
    """Record one task outcome for the agent's and the backend's breakers (one round trip)."""
    report_outcomes(client, agent_id, [(backend, ok)])


def report_outcomes(client: redis.Redis, agent_id: str, outcomes: list[tuple[str, bool]]) -> None:
    """Record ``(backend, ok)`` task outcomes of one agent (one round trip for all)."""
    at = time.time()
    events = [
        json.dumps({"key": k, "ok": ok, "at": at})
        for backend, ok in outcomes
        for k in (agent_key(agent_id), backend_key(backend))
    ]
    if not events:
        return
    pipe = client.pipeline(transaction=False)
    pipe.rpush(EVENTS_KEY, *events)
    pipe.ltrim(EVENTS_KEY, -MAX_PENDING, -1)  # bounded while no supervisor drains it
    pipe.execute()


def is_open(client: redis.Redis, key: str) -> bool:
    """Is ``key``'s breaker open (as published by the last sweep)?"""
    return bool(client.sismember(OPEN_KEY, key))
