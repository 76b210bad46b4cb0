"""Test support shared by the service tests: waiting, and fast self-healing settings."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Self-healing settings fast enough for tests.
FAST_SETTINGS = {
    "HMS_SWEEP_INTERVAL": "1",
    "HMS_HEALTH_INTERVAL": "1",
    "HMS_HEARTBEAT_TIMEOUT": "4",
    "HMS_REPORT_TIMEOUT": "5",
    "HMS_RESTART_BACKOFF": "0.5",
    # The session's store holds other tests' failures: no GA run unless a test asks for one.
    "HMS_GA_TRIGGER_FAILURES": "0",
}


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)
