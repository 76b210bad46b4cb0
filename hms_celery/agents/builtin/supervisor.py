"""The ``supervisor`` skill: the queue of the supervisor's own tasks (``hms.supervisor.*``)."""

from __future__ import annotations

from typing import Any, ClassVar

from hms_celery.runtime.skills import Skill


class SupervisorSkill(Skill):
    """Supervision of the other agents; ``hms.supervisor.sweep`` is routed to its queue."""

    id = "supervisor"
    name = "Supervisor"
    description = "Watch the agents and their tasks; recover what was lost"
    queue = "supervisor"
    task_names: ClassVar[tuple[str, ...]] = ("hms.supervisor.sweep", "hms.supervisor.health_round")

    def execute(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Nothing to do on demand yet: the sweep is its own task."""
        return {"ok": True}
