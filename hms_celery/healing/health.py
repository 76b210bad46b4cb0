"""Health checks: beat asks the supervisor for a health round; the round broadcasts a check
to every agent; each agent's pool answers with a HealthReport stored on its registry row.

An agent whose main process still sends heartbeats but whose pool never answers is wedged
(DEGRADED); one that reports a broken backend is DEGRADED too.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from celery import Task

from hms_celery.agents import registry
from hms_celery.agents.builtin.health import rss_bytes
from hms_celery.app import app
from hms_celery.healing.heartbeats import redis_client

HEALTH_CHECK_TASK = "hms.health.check"
HEALTH_ROUND_TASK = "hms.supervisor.health_round"
LAST_ROUND_KEY = "hms:health:last-round"  # epoch seconds of the last broadcast check


def _z3_available() -> tuple[bool, str]:
    try:
        import z3

        solver = z3.Solver(ctx=z3.Context())
        x = z3.Real("x", solver.ctx)
        solver.add(x * x < 0)
        return solver.check() == z3.unsat, "z3 " + z3.get_version_string()
    except Exception as exc:  # report it, never raise from a health check
        return False, f"z3 unavailable: {exc}"


def _queue_depths(queues: list[str]) -> dict[str, int]:
    try:
        client = redis_client()
        return {q: int(client.llen(q)) for q in queues if not q.startswith("hms.health")}
    except Exception:
        return {}


def build_report(agent_id: str, queues: list[str]) -> dict[str, Any]:
    """A HealthReport: status Healthy/Degraded/Failed, queue depth, memory, backends."""
    z3_ok, z3_note = _z3_available()
    main_pid = os.getppid()
    problems = [] if z3_ok else [z3_note]
    return {
        "agent_id": agent_id,
        "status": "Healthy" if not problems else "Degraded",
        "problems": problems,
        "backends": {"z3": z3_ok},
        "queue_depth": _queue_depths(queues),
        "rss_bytes": {
            "main": rss_bytes(Path(f"/proc/{main_pid}/status")),
            "child": rss_bytes(Path(f"/proc/{os.getpid()}/status")),
        },
        "pid": os.getpid(),  # the pool process that answered
        "main_pid": main_pid,
        "at": time.time(),
    }


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
