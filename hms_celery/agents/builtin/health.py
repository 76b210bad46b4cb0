"""The ``health`` skill: every agent reports on itself (queue ``hms.health``, a broadcast)."""

from __future__ import annotations

from typing import Any, ClassVar

from hms_celery.agents.report import build_report
from hms_celery.runtime.skills import Skill


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
        """A HealthReport of the agent running it (see :mod:`hms_celery.agents.report`)."""
        return build_report(str(payload.get("agent_id", "")), list(payload.get("queues", [])))
