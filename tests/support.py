"""Test support shared by the service tests: waiting, and a stack of an agent host + beat."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hms_celery import client
from hms_celery.agents.host import AgentHost
from tests.conftest import REPO

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


class Stack:
    """An agent host in the test process, its agents, and a beat process."""

    def __init__(self, env: dict[str, str], data_dir: Path) -> None:
        self.env = env
        self.host = AgentHost(env=env)
        self.host.start()
        self.beat_log = (data_dir / "beat.log").open("wb")
        self.beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "hms_celery", "beat",
             "-s", str(data_dir / "beat-schedule"), "--pidfile=", "-l", "INFO"],
            env={**os.environ, **env}, cwd=REPO, stdout=self.beat_log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def spawn(self, skills: list[str], **config) -> str:  # type: ignore[no-untyped-def]
        agent_id = self.host.spawn(skills, {"concurrency": 1, **config})
        client.wait_for_agent(agent_id, timeout=60)
        return agent_id

    def pid(self, agent_id: str) -> int:
        return self.host.children[agent_id].process.pid

    def close(self) -> None:
        self.beat.terminate()
        self.beat.wait(20)
        self.beat_log.close()
        self.host.shutdown(grace=10)
