"""The ``health`` skill: every agent reports on itself (queue ``hms.health``, a broadcast)."""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any, ClassVar

from hms_celery.agents.skills import Skill


class HealthSkill(Skill):
    """A health check of the agent process that runs it.

    The queue is a fanout (:class:`kombu.common.Broadcast`): each agent consuming
    ``hms.health`` gets each check.  Not acknowledged late: a check lost with its worker is
    not worth redelivering.
    """

    id = "health"
    name = "Health check"
    description = "Report the agent's status, pid and memory"
    queue = "hms.health"
    broadcast = True
    acks_late = False
    # The periodic check (beat → supervisor health round → broadcast) is this task:
    task_names: ClassVar[tuple[str, ...]] = ("hms.health.check",)

    def execute(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A HealthReport of the agent running it (see :mod:`hms_celery.healing.health`)."""
        from hms_celery.healing.health import build_report

        return build_report(str(payload.get("agent_id", "")), list(payload.get("queues", [])))


def rss_bytes(status: Path = Path("/proc/self/status")) -> int:
    """Resident memory of this process: ``VmRSS`` of /proc, else the peak from getrusage."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
