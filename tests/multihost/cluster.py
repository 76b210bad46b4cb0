"""Three HMS hosts on this machine, one broker and one store (the test's and the bench's).

* the root namespace: a private ``redis-server`` on the bridge address (the broker), a TCP
  forwarder from the bridge address to the shared PostgreSQL (a scratch database
  ``hms_multihost_*``, created and dropped here), and — in this process — an agent host
  with the supervisor agent, plus Celery beat (:class:`~hms_celery.client.local_stack.LocalStack`);
* each host namespace: an agent host (:mod:`tests.multihost.agent_host`) with its prover
  agents, started with only the HMS settings given here (nothing of the parent's ``HMS_*``).

Every process reaches the broker and the store through the bridge, the root ones too: they all
name the same store (the broker database's claim is by store URL).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tests.multihost.netns import BRIDGE_IP, Host, Topology
from tests.support import wait_until

REPO = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = os.environ.get(
    "HMS_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PG_TARGET = ("127.0.0.1", 5432)

#: Fast self-healing, as in tests/support.FAST_SETTINGS, but a long report timeout: an agent
#: of one pool process busy on a long proof cannot answer a health check, which is not the
#: failure these scenarios are about.
SETTINGS = {
    "HMS_SWEEP_INTERVAL": "1",
    "HMS_HEALTH_INTERVAL": "1",
    "HMS_HEARTBEAT_TIMEOUT": "4",
    "HMS_REPORT_TIMEOUT": "60",
    "HMS_RESTART_BACKOFF": "0.5",
    "HMS_GA_TRIGGER_FAILURES": "0",
    "HMS_PROVER_TIMEOUT": "300",
    "HMS_CONNECT_TIMEOUT": "3",
}


def free_port(address: str) -> int:
    """A TCP port free on ``address`` now."""
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


@dataclass
class HostRun:
    """A host namespace's agent host process and what it reported when ready."""

    host: Host
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]
    ready_file: Path
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def host_id(self) -> str:
        return str(self.info["host_id"])

    @property
    def agents(self) -> list[str]:
        """The agents it spawned at start (not the replacements it spawned later)."""
        return list(self.info["agents"])

    def log(self) -> str:
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")[-3000:]


class Cluster:
    """The three-host stack; :meth:`start` builds it, :meth:`close` tears all of it down."""

    def __init__(
        self,
        work_dir: Path,
        *,
        hosts: int = 3,
        agents_per_host: int = 1,
        concurrency: int = 1,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.work_dir = work_dir
        self.topology = Topology(hosts)
        self.agents_per_host = agents_per_host
        self.concurrency = concurrency
        self.settings = {**SETTINGS, **(settings or {})}
        self.env: dict[str, str] = {}
        self.runs: list[HostRun] = []
        self.database_url = ""
        self._exit = ExitStack()
        self._local: Any = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, ready_timeout: float = 120.0) -> None:
        """Bridge and namespaces, broker, forwarder, store, supervisor + beat, the hosts."""
        try:
            self._start(ready_timeout)
        except BaseException:
            self.close()
            raise

    def _start(self, ready_timeout: float) -> None:
        from sqlalchemy.engine import make_url

        from hms_celery.app import reconfigure
        from hms_celery.store.migrate import upgrade
        from tests.support import scratch_database

        self._exit.callback(self.topology.destroy)
        self.topology.create()
        broker = self._start_redis()
        pg_port = self._start_forwarder()
        scratch = self._exit.enter_context(scratch_database(PG_ADMIN_URL, "hms_multihost"))
        url = make_url(scratch).set(host=BRIDGE_IP, port=pg_port)
        self.database_url = url.render_as_string(hide_password=False)
        upgrade(self.database_url)
        self.env = {
            **self.settings,
            "HMS_BROKER_URL": broker,
            "HMS_DATABASE_URL": self.database_url,
        }

        saved = {k: v for k, v in os.environ.items() if k.startswith("HMS_")}

        def restore_environment() -> None:
            for name in [n for n in os.environ if n.startswith("HMS_")]:
                del os.environ[name]
            os.environ.update(saved)
            reconfigure()

        self._exit.callback(restore_environment)
        root_dir = self.work_dir / "root"
        root_dir.mkdir(parents=True, exist_ok=True)
        os.environ.update({**self.env, "HMS_DATA_DIR": str(root_dir)})
        reconfigure()

        from hms_celery.client.local_stack import LocalStack

        self._local = LocalStack({**self.env, "HMS_DATA_DIR": str(root_dir)}, root_dir)
        self._exit.callback(self._local.close)
        self._local.spawn(["supervisor"], timeout=ready_timeout)
        self._exit.callback(self._stop_hosts)
        for host in self.topology.hosts:
            self.runs.append(self._start_host(host))
        for run in self.runs:
            self._wait_ready(run, ready_timeout)

    def close(self) -> None:
        """Stop everything started, in reverse order (the namespaces and bridge last)."""
        self._exit.close()

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ parts
    def _child(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Any:
        log_path = self.work_dir / f"{name}.log"
        log_file = log_path.open("ab")
        process = subprocess.Popen(
            argv,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            env=env,
            start_new_session=True,
        )

        def stop() -> None:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            log_file.close()

        self._exit.callback(stop)
        return process, log_path

    def _start_redis(self) -> str:
        import redis

        port = free_port(BRIDGE_IP)
        data = self.work_dir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        process, log_path = self._child(
            "redis",
            [
                "redis-server", "--bind", BRIDGE_IP, "--port", str(port),
                "--save", "", "--appendonly", "no", "--dir", str(data),
                "--protected-mode", "no", "--daemonize", "no",
            ],
        )  # fmt: skip
        url = f"redis://{BRIDGE_IP}:{port}/0"
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5)

        def answers() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {log_path.read_text()[-2000:]}")
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(answers, 15, "the broker")
        client.close()
        return url

    def _start_forwarder(self) -> int:
        port = free_port(BRIDGE_IP)
        argv = [sys.executable, "-m", "tests.multihost.forward", BRIDGE_IP, str(port)]
        process, log_path = self._child("forward-pg", [*argv, *map(str, PG_TARGET)])

        def listening() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"the forwarder exited: {log_path.read_text()[-2000:]}")
            try:
                socket.create_connection((BRIDGE_IP, port), timeout=0.5).close()
                return True
            except OSError:
                return False

        wait_until(listening, 15, "the PostgreSQL forwarder")
        return port

    def _start_host(self, host: Host) -> HostRun:
        data = self.work_dir / host.name
        data.mkdir(parents=True, exist_ok=True)
        ready = data / "ready.json"
        # Only the settings given here: nothing of this process's HMS_* leaks into a host.
        env = {k: v for k, v in os.environ.items() if not k.startswith("HMS_")}
        env.update({**self.env, "HMS_DATA_DIR": str(data)})
        argv = [
            sys.executable, "-m", "tests.multihost.agent_host",
            "--ready-file", str(ready), "--agents", str(self.agents_per_host),
            "--concurrency", str(self.concurrency),
        ]  # fmt: skip
        log_path = data / "host.log"
        log_file = log_path.open("ab")
        process = subprocess.Popen(
            Topology.command(host, argv),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            env=env,
            start_new_session=True,
        )
        return HostRun(host, process, log_path, log_file, ready)

    def _wait_ready(self, run: HostRun, timeout: float) -> None:
        from hms_celery import client

        def written() -> bool:
            if run.process.poll() is not None:
                raise RuntimeError(f"agent host {run.host.name} exited: {run.log()}")
            return run.ready_file.exists()

        wait_until(written, timeout, f"agent host {run.host.name}")
        run.info = json.loads(run.ready_file.read_text())
        for agent in run.agents:
            client.wait_for_agent(agent, timeout=timeout)

    def _stop_hosts(self) -> None:
        """SIGTERM each agent host (a clean stop of its agents), then kill what is left."""
        for run in self.runs:
            if run.process.poll() is None:
                run.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for run in self.runs:
            with suppress(subprocess.TimeoutExpired):
                run.process.wait(max(deadline - time.monotonic(), 0.1))
            self.topology.kill_all(run.host)
            run.process.wait()
            run.log_file.close()

    # ------------------------------------------------------------------ views
    def run_of(self, host: Host) -> HostRun:
        return next(r for r in self.runs if r.host == host)

    def host_of_agent(self, agent_id: str) -> Host | None:
        """The namespace an agent runs in, from its host name (``…@hmsm-h1``)."""
        suffix = agent_id.rsplit("@", 1)[-1]
        return next((h for h in self.topology.hosts if h.name == suffix), None)
