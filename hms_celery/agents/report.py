"""An agent's report on itself: a HealthReport (status, backends, queue depth, memory).

Both the ``health`` skill (:mod:`hms_celery.agents.builtin.health`) and the broadcast health
check (:mod:`hms_celery.healing.health`) build it here, so neither imports the other.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path
from typing import Any

from hms_celery.healing.heartbeats import redis_client


def rss_bytes(status: Path = Path("/proc/self/status")) -> int:
    """Resident memory of this process: ``VmRSS`` of /proc, else the peak from getrusage."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def _z3_available() -> tuple[bool, str]:
    try:
        import z3  # here: a health report must not fail to import if Z3 is broken

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
