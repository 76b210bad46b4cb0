"""A third-party HMS skill for the tests: echo the payload back from the worker process.

Installed by putting ``tests/plugins/hms_echo_skill`` on ``PYTHONPATH``: the
``hms_echo_skill-0.1.dist-info`` next to this package declares the entry point.
"""

from __future__ import annotations

import os
from typing import Any

from hms_celery.agents.skills import Skill


class EchoSkill(Skill):
    """Return the payload and the pid of the process that ran it."""

    id = "echo"
    description = "Echo the payload (test plugin)"

    def can_handle(self, payload: dict[str, Any]) -> bool:
        return "refuse" not in payload

    def execute(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"echo": payload, "pid": os.getpid()}
