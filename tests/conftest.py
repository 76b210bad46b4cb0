"""Shared fixtures: real Redis, real PostgreSQL, real Celery worker processes.

Service tests use the machine's Redis (127.0.0.1:6379, a dedicated database number) and
PostgreSQL (127.0.0.1:5432, a fresh database per test session, dropped afterwards).  Override
with HMS_TEST_REDIS_URL / HMS_TEST_PG_ADMIN_URL.  Tests on RabbitMQ (127.0.0.1:5672, override
with HMS_TEST_AMQP_URL) get a virtual host of their own, made and deleted with rabbitmqctl.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REDIS_URL = os.environ.get("HMS_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
PG_ADMIN_URL = os.environ.get(
    "HMS_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
AMQP_URL = os.environ.get("HMS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")
REPO = Path(__file__).resolve().parents[1]
#: The brokers HMS supports; tests parametrised over them run once on each.
BROKERS = ("redis", "amqp")

# Tests must never pick up a developer's own configuration or a running `hms up`.
for _name in list(os.environ):
    if _name.startswith("HMS_") and not _name.startswith("HMS_TEST_"):
        del os.environ[_name]


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is required at {REDIS_URL}: {exc} (.ci/run starts it)")
    client.flushdb()
    return REDIS_URL


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    import psycopg2

    from tests.support import scratch_database

    try:
        psycopg2.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required at {PG_ADMIN_URL}: {exc} (.ci/run starts it)")
    with scratch_database(PG_ADMIN_URL, "hms_test") as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'hms.db'}"


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


@pytest.fixture
def amqp_url() -> Iterator[str]:
    """A RabbitMQ virtual host of this test's own."""
    with rabbitmq_vhost() as url:
        yield url


def stack_redis_url(redis_url: str) -> str:
    """The Redis database of the tests' own stacks (chaos, AMQP coordination), apart from the
    session's (whose `worker` fixture must not take their tasks)."""
    return os.environ.get("HMS_TEST_STACK_REDIS_URL") or redis_url.rsplit("/", 1)[0] + "/10"


@pytest.fixture(scope="session")
def stack_env(
    redis_url: str, pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Environment of the service tests: local Redis broker, fresh PostgreSQL store."""
    from hms_celery.store.migrate import upgrade

    data_dir = tmp_path_factory.mktemp("hms-data")
    env = {
        "HMS_BROKER_URL": redis_url,
        "HMS_DATABASE_URL": pg_url,
        "HMS_DATA_DIR": str(data_dir),
        "HMS_PROVER_TIMEOUT": "60",
    }
    configure_process(env)
    upgrade(pg_url)
    return env


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
            env={**os.environ, **env},
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


@pytest.fixture(scope="session")
def worker(stack_env: dict[str, str]) -> Iterator[WorkerProcess]:
    """One prove.z3 worker for the whole session."""
    proc = WorkerProcess(stack_env)
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def ga_worker(stack_env: dict[str, str], worker: WorkerProcess) -> Iterator[WorkerProcess]:
    """A worker on the ``ga`` queue for the session (the ``worker`` fixture proves)."""
    proc = WorkerProcess(stack_env, queues="ga", concurrency=1)
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()
