"""The actor name under which the client's actions are recorded (audit log, policy)."""

from __future__ import annotations

ACTOR = "client"
