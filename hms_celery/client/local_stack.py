"""A self-healing stack on this machine: an agent host in this process and Celery beat beside it.

Tests and benchmarks drive it: they spawn agents with the skills they need (the supervisor is
an agent like the others), kill or stop them, and watch the supervisor heal.  The broker and
the store are the caller's (``env``); ``hms up`` (:mod:`hms_celery.cli.stack`) adds its own
broker, the store migration and Flower.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from hms_celery.agents.host import AgentHost
from hms_celery.client.agents import wait_for_agent


class LocalStack:
    """An :class:`AgentHost` in this process, its agents, and a ``celery beat`` child."""

    def __init__(self, env: dict[str, str], data_dir: Path) -> None:
        self.env = env
        self.host = AgentHost(env=env)
        self.host.start()
        self.beat_log = (data_dir / "beat.log").open("wb")
        try:
            self.beat = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "hms_celery", "beat",
                 "-s", str(data_dir / "beat-schedule"), "--pidfile=", "-l", "INFO"],
                env={**os.environ, **env}, stdout=self.beat_log, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: close() can kill all of it
            )  # fmt: skip
        except BaseException:
            self.beat_log.close()
            self.host.shutdown()
            raise

    def spawn(self, skills: list[str], timeout: float = 60.0, **config: object) -> str:
        """Start an agent (one pool process unless ``concurrency`` says otherwise) and wait
        until it is READY; returns its id."""
        agent_id = self.host.spawn(skills, {"concurrency": 1, **config})
        wait_for_agent(agent_id, timeout=timeout)
        return agent_id

    def pid(self, agent_id: str) -> int:
        """The worker main process of ``agent_id``."""
        return self.host.children[agent_id].process.pid

    def log_path(self, agent_id: str) -> Path:
        """Where ``agent_id``'s worker writes its log."""
        return self.host.children[agent_id].log_path

    def close(self, grace: float = 10.0) -> None:
        """Stop beat, then warm-shutdown every agent."""
        self.beat.terminate()
        try:
            self.beat.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.beat.pid, signal.SIGKILL)
            self.beat.wait()
        self.beat_log.close()
        self.host.shutdown(grace=grace)
