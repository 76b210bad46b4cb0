"""Health checks: beat asks the supervisor for a health round; the round broadcasts a check
to every agent; each agent's pool answers with a HealthReport
(:func:`hms_celery.agents.report.build_report`) stored on its registry row.

An agent whose main process still sends heartbeats but whose pool never answers is wedged
(DEGRADED); one that reports a broken backend is DEGRADED too.
"""

from __future__ import annotations

import time
from typing import Any

from celery import Task

from hms_celery.agents import registry
from hms_celery.agents.report import build_report
from hms_celery.app import app
from hms_celery.healing.heartbeats import redis_client

HEALTH_CHECK_TASK = "hms.health.check"
HEALTH_ROUND_TASK = "hms.supervisor.health_round"
LAST_ROUND_KEY = "hms:health:last-round"  # epoch seconds of the last broadcast check


@app.task(name=HEALTH_CHECK_TASK, bind=True, ignore_result=True, acks_late=False)
def health_check(self: Task) -> None:
    """Runs on every agent (broadcast): store this agent's HealthReport."""
    agent_id = self.request.hostname
    agent = registry.get_agent(agent_id)
    queues = agent["queues"] if agent else []
    registry.record_report(agent_id, build_report(agent_id, queues))


@app.task(name=HEALTH_ROUND_TASK, ignore_result=True)
def health_round() -> None:
    """Beat → supervisor: remember when, then broadcast a check to every agent."""
    redis_client().set(LAST_ROUND_KEY, time.time())
    health_check.apply_async(expires=30)


def last_round(client: Any) -> float | None:
    value = client.get(LAST_ROUND_KEY)
    return float(value) if value is not None else None
