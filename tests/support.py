"""Test support shared by the service tests: the services' URLs, real worker processes, stacks
of their own, waiting, and fast self-healing settings."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

REDIS_URL = os.environ.get("HMS_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
PG_ADMIN_URL = os.environ.get(
    "HMS_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
AMQP_URL = os.environ.get("HMS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")
REPO = Path(__file__).resolve().parents[1]
#: The brokers HMS supports; tests parametrised over them run once on each.
BROKERS = ("redis", "amqp")

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


#: A true claim over a symbolic size that no argument for every size covers today (a sum over
#: ``Finset.range (n + 1)``), so HMS checks it size by size: BOUNDED — and slow with a large
#: max_size (about 14 s for 200 on this machine), which the healing tests use to keep a task
#: in flight.
BOUNDED_ONLY = "∀ (n : ℕ) (f : ℕ → ℝ), 0 ≤ ∑ i in Finset.range (n + 1), f i * f i"


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


def decide_text(text: str, timeout_s: float = 20) -> tuple[Any, str, dict | None]:
    """HMS's verdict, reason and counterexample for a statement text, in process, through the
    whole path ``parse_statement`` → ``prove`` (a ``StatementError`` counts as ERROR)."""
    from hms_celery.errors import StatementError
    from hms_celery.verification import parse_statement
    from hms_celery.verification.prover import prove
    from hms_celery.verification.verdict import Verdict

    try:
        statement = parse_statement(text)
    except StatementError as exc:
        return Verdict.ERROR, exc.message, None
    out = prove(statement, timeout_s=timeout_s)
    return out.verdict, out.reason, out.counterexample


def http_get(
    url: str, auth: tuple[str, str] | None = None, timeout: float = 30
) -> tuple[int, bytes]:
    """GET ``url`` with optional basic auth: (status, body); an HTTP error status is
    returned, not raised."""
    request = urllib.request.Request(url)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@contextmanager
def scratch_database(admin_url: str, prefix: str, *, migrate: bool = False) -> Iterator[str]:
    """A fresh PostgreSQL database on the test server (migrated if asked), dropped
    afterwards; yields its SQLAlchemy URL."""
    import psycopg2

    from hms_celery.store.db import dispose_engines
    from hms_celery.store.migrate import upgrade

    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = psycopg2.connect(admin_url, connect_timeout=5)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()  # a fresh connection drops it: tests may restart PostgreSQL meanwhile
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://", 1)
    url = f"{base}/{name}"
    try:
        if migrate:
            upgrade(url)
        yield url
    finally:
        dispose_engines()
        admin = psycopg2.connect(admin_url, connect_timeout=10)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def configure_process(env: dict[str, str], unset: Iterable[str] = ()) -> None:
    """Point this test process (client side) at ``env``'s services (removing the variables
    named in ``unset`` first, e.g. an AMQP stack's HMS_REDIS_URL)."""
    from hms_celery.app import reconfigure

    for name in unset:
        os.environ.pop(name, None)
    os.environ.update(env)
    reconfigure()


def rabbitmqctl(*args: str) -> None:
    """Run ``rabbitmqctl`` (quietly); the test fails if it does."""
    tool = shutil.which("rabbitmqctl")
    if tool is None:
        pytest.fail("rabbitmqctl is required to make RabbitMQ virtual hosts for the AMQP tests")
    done = subprocess.run([tool, "-q", *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        pytest.fail(f"rabbitmqctl {' '.join(args)} failed: {done.stderr or done.stdout}")


@contextmanager
def rabbitmq_vhost(prefix: str = "hms_test") -> Iterator[str]:
    """A fresh RabbitMQ virtual host the test user may use, deleted afterwards (with every
    queue and exchange in it); yields its broker URL."""
    from urllib.parse import urlsplit

    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    user = urlsplit(AMQP_URL).username or "guest"
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
        yield f"{AMQP_URL.rstrip('/')}/{name}"
    finally:
        rabbitmqctl("delete_vhost", name)


def stack_redis_url(redis_url: str, db: int = 10) -> str:
    """The Redis database of a test's own stack (chaos, GA, breakers, AMQP coordination),
    apart from the session's (whose `worker` fixture must not take its tasks):
    ``HMS_TEST_STACK_REDIS_URL``, else database ``db`` of the session's Redis."""
    return os.environ.get("HMS_TEST_STACK_REDIS_URL") or f"{redis_url.rsplit('/', 1)[0]}/{db}"


@contextmanager
def isolated_stack(
    stack_env: dict[str, str],
    tmp_path: Path,
    *,
    db: int = 10,
    broker: dict[str, str] | None = None,
    spawn: Iterable[str] = ("supervisor",),
    **settings: str,
) -> Iterator[Any]:
    """An agent host (:class:`~hms_celery.client.local_stack.LocalStack`) with a supervisor, on a
    broker of its own (``broker``'s variables, else Redis database ``db``, flushed), the
    session's store and fast self-healing settings; this process points at it meanwhile."""
    from hms_celery.client.local_stack import LocalStack
    from hms_celery.healing.heartbeats import redis_client

    own = broker or {"HMS_BROKER_URL": stack_redis_url(stack_env["HMS_BROKER_URL"], db)}
    env = {**stack_env, **FAST_SETTINGS, **own, **settings}
    configure_process(env)
    redis_client().flushdb()
    stack = LocalStack(env, tmp_path)
    try:
        stack.spawn(list(spawn))
        yield stack
    finally:
        stack.close()
        configure_process(stack_env, unset=[k for k in env if k not in stack_env])


def worker_env(env: dict[str, str]) -> dict[str, str]:
    """A worker's environment: this process's without any ``HMS_*`` setting (an earlier
    test's stack must not leak into it), plus ``env``."""
    base = {
        k: v for k, v in os.environ.items() if not k.startswith("HMS_") or k.startswith("HMS_TEST_")
    }
    return {**base, **env}


class WorkerProcess:
    """A real ``celery worker`` child process."""

    def __init__(
        self,
        env: dict[str, str],
        queues: str = "prove.z3",
        concurrency: int = 2,
        *,
        new_session: bool = False,
    ):
        """``new_session``: its own process group, so a test can kill it with its pool."""
        self.name = f"test-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
        self.log_path = Path(env["HMS_DATA_DIR"]) / f"{self.name.split('@')[0]}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "hms_celery", "worker",
                "-Q", queues, "-n", self.name, "-c", str(concurrency), "-l", "INFO",
                "--without-mingle", "--without-gossip",
            ],
            env=worker_env(env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=new_session,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 60) -> None:
        from hms_celery.app import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log()}")
            replies = app.control.ping([self.name], timeout=0.5) or []
            if any(self.name in r for r in replies):
                return
        raise RuntimeError(f"worker {self.name} not ready: {self.log()}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
